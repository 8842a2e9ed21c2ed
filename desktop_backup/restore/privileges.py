"""What a restore may do to the users table: never grant more than the restorer holds.

Anyone who may restore can also edit a backup and recompute its checksums, so the users'
rows in it are judged by rules it cannot rewrite: the restorer's own standing and what the
database holds now. Per user row of the backup, against the same user in the database:

* no restore makes a super admin (unless the user is one already);
* a role is raised only as far as the restorer's own (an admin may bring back an admin);
* the owner flag is set only when an owner or a super admin restores;
* a deactivated account is re-activated only if the restorer could grant what it then holds;
* the password (and remember token) of someone who outranks the restorer changes only when
  the archive is exactly as this console wrote it (see :mod:`desktop_backup.authenticity`),
  so an edited backup cannot hand an admin the owner's login.

Moving a user into another organization is refused earlier, by the tenant and clash checks
of :mod:`desktop_backup.restore.check`. A refusal names the user and the column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from desktop_backup.config import SchemaMapping
from desktop_backup.restore.plan import RestoreRefused
from desktop_backup.restore.values import norm

CHUNK = 500
SUPER, ADMIN, MEMBER = 3, 2, 1


class PrivilegeRefused(RestoreRefused):
    """A backup would give a user more rights than the restorer holds; nothing changed."""


@dataclass(frozen=True)
class Standing:
    """What one account may do, as far as a restore could change it."""

    rank: int  # SUPER, ADMIN or MEMBER
    owner: bool
    active: bool


def truthy(value: object) -> bool:
    """As the PHP app reads a flag: NULL, 0, '' and '0' are false."""
    if isinstance(value, str):
        return value.strip() not in ("", "0", "false")
    return bool(value)


def as_text(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return "" if value is None else str(value)


class UserGuard:
    """Checks the backup's users rows batch by batch during the restore check.

    `restorer_role`/`restorer_is_owner` are the logged-in restorer's; an unknown restorer
    (empty role) holds nothing, so a caller that forgets to say who restores gets the
    strictest rules. `authentic` tells whether the archive is exactly as this console wrote
    it (its tag checks out).
    """

    def __init__(self, mapping: SchemaMapping, restorer_role: str, restorer_is_owner: bool,
                 authentic: bool) -> None:
        self.mapping = mapping
        rank = self.rank_of(restorer_role) if restorer_role else 0
        if restorer_is_owner:  # an owner may grant what an admin may
            rank = max(rank, ADMIN)
        self.restorer = Standing(rank, restorer_is_owner, True)
        self.may_make_owner = restorer_is_owner or rank == SUPER
        self.authentic = authentic

    def judged_no_looser_than(self, role: str, is_owner: bool) -> bool:
        """Whether this guard's rules were at least as strict as another restorer's would
        be: a plan checked for someone holding less may be applied by someone holding more."""
        other = UserGuard(self.mapping, role, is_owner, self.authentic)
        return (self.restorer.rank <= other.restorer.rank
                and (not self.may_make_owner or other.may_make_owner))

    def rank_of(self, role: str) -> int:
        role = role.strip()
        if role == self.mapping.super_admin_role:
            return SUPER
        return ADMIN if role in self.mapping.admin_roles else MEMBER

    def covers(self, table_name: str) -> bool:
        return table_name == self.mapping.users_table

    def check_batch(self, conn: Connection, table, columns: list[str],
                    values: list[Sequence]) -> None:
        """One batch of the users table, as TablePlan.decode_columns gives it."""
        m = self.mapping
        if m.user_id_column not in columns or not values or not values[0]:
            return
        by_name = dict(zip(columns, values, strict=True))
        ids = by_name[m.user_id_column]
        now = self._current(conn, table, [i for i in ids if i is not None])
        for index, user_id in enumerate(ids):
            current = now.get(norm((user_id,)))
            row = {name: column[index] for name, column in by_name.items()}
            self._check_row(row, current)

    def _current(self, conn: Connection, table, ids: list) -> dict[tuple, dict]:
        """The same users as the database holds them now, by id."""
        m = self.mapping
        wanted = [c for c in (m.user_id_column, m.username_column, m.role_column,
                              m.owner_column, m.active_column, m.password_column,
                              "remember_token") if c in table.c]
        found: dict[tuple, dict] = {}
        key = table.c[m.user_id_column]
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start:start + CHUNK]
            query = select(*[table.c[c] for c in wanted]).where(key.in_(chunk))
            for row in conn.execute(query).mappings():
                found[norm((row[m.user_id_column],))] = dict(row)
        return found

    def standing(self, row: dict, current: dict | None) -> Standing:
        """The account's standing once `row` is restored over `current` (None: a user the
        database does not have now, who gets the table's defaults for missing columns)."""
        m = self.mapping

        def value(column: str, default: object) -> object:
            if column in row:
                return row[column]
            return current.get(column, default) if current is not None else default

        return Standing(self.rank_of(as_text(value(m.role_column, ""))),
                        truthy(value(m.owner_column, False)),
                        truthy(value(m.active_column, True)))

    def _check_row(self, row: dict, current: dict | None) -> None:
        after = self.standing(row, current)
        before = self.standing({}, current) if current is not None else None
        who = self._name(row, current)
        m = self.mapping
        if after.rank == SUPER and (before is None or before.rank != SUPER):
            self._refuse(f"would make {who} a super admin ({m.role_column} "
                         f"'{as_text(row.get(m.role_column))}')")
        raised = after.rank > (before.rank if before else MEMBER)
        if raised and after.rank > self.restorer.rank:
            self._refuse(f"would raise {who}'s {m.role_column} above your own")
        if after.owner and not (before and before.owner) and not self.may_make_owner:
            self._refuse(f"would make {who} an owner of the organization "
                         f"({m.owner_column}); only an owner or a super admin may restore it")
        if after.active and before is not None and not before.active \
                and not self._may_grant(after):
            self._refuse(f"would re-activate {who} ({m.active_column}), who would then hold "
                         "more rights than you")
        if current is not None and not self.authentic and self._outranks(before or after):
            for column in (m.password_column, "remember_token"):
                if column in row and as_text(row[column]) != as_text(current.get(column)):
                    self._refuse(f"would change the {column} of {who}, who holds more rights "
                                 "than you, and the backup is not exactly as this console "
                                 "wrote it")

    def _may_grant(self, standing: Standing) -> bool:
        return standing.rank <= self.restorer.rank and (not standing.owner
                                                        or self.may_make_owner)

    def _outranks(self, standing: Standing) -> bool:
        if self.restorer.rank == SUPER:
            return False
        return standing.rank > self.restorer.rank or (standing.owner
                                                       and not self.may_make_owner)

    def _name(self, row: dict, current: dict | None) -> str:
        m = self.mapping
        name = row.get(m.username_column) or (current or {}).get(m.username_column)
        user_id = row.get(m.user_id_column)
        return f"user '{as_text(name)}' (id {user_id})" if name else f"user id {user_id}"

    @staticmethod
    def _refuse(what: str) -> None:
        raise PrivilegeRefused(f"The backup {what}; a restore can never give anyone more "
                               "rights than the person restoring holds, so it was refused and "
                               "nothing was changed.")
