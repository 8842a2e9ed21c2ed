"""The restorer's own admin rights after the restore: a restore never locks its restorer out.

A backup from before its restorer became an admin of the organization (or a member of it)
does not hold their admin rights: their users row with a lower role (the billing database),
or no membership or admin role assignment of theirs (memberships and roles in tables).
Restoring it would take those rights away in the middle of their own work, and only another
admin could give them back. So the check works out, as auth.py decides it at login, whether
the restorer is an admin of the organization now and would still be one afterwards, from
the backup's rows of the mapped users, membership and role tables and the live rows the
restore keeps (other organizations' and shared rows), and refuses when the answer changes.
A super admin holds their rights from no organization and is never affected.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.engine import Connection

from desktop_backup.config import SchemaMapping
from desktop_backup.opening import OpenArchive
from desktop_backup.organizations import Organization
from desktop_backup.restore.live import chunks, not_owned
from desktop_backup.restore.plan import RestoreRefused, TablePlan
from desktop_backup.restore.privileges import SUPER, UserGuard, as_text, truthy
from desktop_backup.tenancy import OrganizationScope
from desktop_backup.work import Actor


class OwnRightsRefused(RestoreRefused):
    """The restore would take away the restorer's own admin rights; nothing changed."""


class OwnAccess:
    """Sees the backup's rows of the mapped users, membership and role tables while the
    check reads them (`see`), keeping only the few that can make the restorer an admin,
    then answers whether the restorer would still be one (`check`)."""

    def __init__(self, mapping: SchemaMapping, restorer: Actor, org: Organization,
                 scope: OrganizationScope, plans: list[TablePlan]) -> None:
        self.mapping, self.org, self.scope = mapping, org, scope
        self.user_id = restorer.user_id
        guard = UserGuard(mapping, restorer.role, restorer.is_owner, False)
        # An unknown restorer has no rights to lose; a super admin's come from no organization.
        self.active = bool(restorer.user_id and restorer.role) and \
            guard.rank_of(restorer.role) != SUPER
        self.by_name = {p.name: p for p in plans}
        self.seen: dict[str, list[tuple]] = {}

    def _watched(self) -> dict[str, tuple[str, set[str]]]:
        """Per mapped table, the column whose value (as text) makes a backup row matter."""
        m, me = self.mapping, {str(self.user_id)}
        watched = {m.users_table: (m.user_id_column, me)}
        if m.membership_table:
            watched[m.membership_table] = (m.membership_user_column, me)
        if m.role_assignments_table:
            watched[m.role_assignments_table] = (m.role_assignment_user_column, me)
            watched[m.roles_table] = (m.role_name_column, set(m.admin_roles))
        return watched

    def watches(self, name: str) -> bool:
        """Whether rows of the restored table `name` can make the restorer an admin."""
        return self.active and name in self._watched()

    def see(self, plan: TablePlan, columns: list[Sequence]) -> None:
        """One decoded batch of a restored table (as TablePlan.decode_columns gives it)."""
        if not self.active or not columns:
            return
        column, wanted = self._watched().get(plan.name, ("", set()))
        if column not in plan.columns:
            return
        values = columns[plan.columns.index(column)]
        rows = [at for at, value in enumerate(values) if as_text(value).strip() in wanted]
        if rows:
            self.seen.setdefault(plan.name, []).extend(
                tuple(c[at] for c in columns) for at in rows)

    def check(self, conn: Connection) -> None:
        """Refuse when the restorer is an admin of the organization now and would not be
        once the restore is done (its rows left out, rows.settle_left_out, counted)."""
        if not self.active or not self._is_admin(conn, after=False):
            return
        if self._is_admin(conn, after=True):
            return
        name = self.org.name
        raise OwnRightsRefused(
            f"This backup is from before you were an admin of {name}: restoring it would take "
            "away your own admin rights, so it was refused and nothing was changed; ask a "
            f"super admin or another admin of {name} to restore it.")

    def _is_admin(self, conn: Connection, after: bool) -> bool:
        """As auth._rights decides it, on the rows there now or after the restore."""
        m, me = self.mapping, [self.user_id]
        users = self._rows(conn, m.users_table, m.user_id_column, me, after)
        if len(users) != 1 or not truthy(users[0].get(m.active_column, True)):
            return False
        user, org_id = users[0], str(self.org.id)
        if m.membership_table:
            tenants = {as_text(r.get(m.membership_tenant_column)) for r in self._rows(
                conn, m.membership_table, m.membership_user_column, me, after)}
        else:
            tenants = {as_text(user.get(m.tenant_column))}
        if org_id not in tenants:
            return False
        if not m.role_assignments_table:
            return as_text(user.get(m.role_column)).strip() in m.admin_roles or \
                truthy(user.get(m.owner_column, False))
        held = [r.get(m.role_assignment_role_column) for r in self._rows(
            conn, m.role_assignments_table, m.role_assignment_user_column, me, after)]
        roles = self._rows(conn, m.roles_table, m.role_id_column,
                           [r for r in held if r is not None], after)
        return any(as_text(r.get(m.role_name_column)).strip() in m.admin_roles
                   and as_text(r.get(m.role_scope_column)).strip() == org_id for r in roles)

    def _rows(self, conn: Connection, name: str, column: str, values: list,
              after: bool) -> list[dict]:
        """The rows of `name` whose `column` is one of `values`: those there now, or after
        the restore (the live rows it keeps, and the backup's it writes)."""
        table = self.scope.metadata.tables.get(name)
        if table is None or column not in table.c or not values:
            return []
        plan = self.by_name.get(name) if after else None
        found = []
        for chunk in chunks(values):
            query = select(table).where(table.c[column].in_(chunk))
            if plan is not None:
                query = query.where(not_owned(self.scope, plan.scope, self.org.id))
            found += [dict(row) for row in conn.execute(query).mappings()]
        if plan is not None and column in plan.columns:
            wanted = {as_text(v).strip() for v in values}
            at = plan.columns.index(column)
            found += [dict(zip(plan.columns, row, strict=True))
                      for row in self.seen.get(name, [])
                      if as_text(row[at]).strip() in wanted and not plan.leaves_out(row)]
        return found


def keeps_own_rights(conn: Connection, archive: OpenArchive, mapping: SchemaMapping,
                     restorer: Actor, org: Organization, scope: OrganizationScope,
                     plans: list[TablePlan]) -> None:
    """OwnAccess's judgement for a restorer other than the one a plan was checked for (the
    apply's), reading only the archive's users, membership and role tables; raises
    OwnRightsRefused."""
    access = OwnAccess(mapping, restorer, org, scope, plans)
    for plan in plans:
        if access.watches(plan.name):
            for batch in archive.batches(plan.entry):
                access.see(plan, plan.decode_columns(batch))
    access.check(conn)
