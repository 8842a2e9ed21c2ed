"""Every row of an archive, read once before anything changes and proved to fit the database.

What a restore's check learns from the rows themselves: counts and checksums (the archive's
batches), each row's owner, repeated keys, clashes with other organizations' keys, and every
foreign key a row holds — inside the backup, or to a row the database keeps — plus the users'
rights (restore.privileges). Memory stays bounded: the backup's keys are kept compactly
(plan.KeySet) and unresolved references are looked up in the database in batches.
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from itertools import islice

from sqlalchemy import ForeignKeyConstraint, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from desktop_backup.config import SchemaMapping
from desktop_backup.opening import OpenArchive
from desktop_backup.restore.live import (
    clash_words,
    find_clash,
    missing_values,
    orphans_holding,
    owned,
    taken_in_range,
    unique_keys,
)
from desktop_backup.restore.plan import (
    CACHED_KEYS,
    KeySet,
    RestoreRefused,
    TablePlan,
    stop_if_cancelled,
)
from desktop_backup.restore.privileges import UserGuard
from desktop_backup.restore.values import Key, norm
from desktop_backup.tenancy import Hop, OrganizationScope, TableScope
from desktop_backup.work import CancelFlag, Progress, ProgressCallback

PENDING_LIMIT = 50_000  # references kept before they are looked up in the database
OUTSIDE_LIMIT = 100_000  # references outside the backup remembered per table for the restore


def user_links(mapping: SchemaMapping, scope: OrganizationScope) -> frozenset[tuple[str, str]]:
    """(table, users table) for the tables whose rows are a user's link to the organization
    (the mapping's membership and role assignment tables), where users are shared.

    A user deleted since the backup cannot come back with a restore of one organization, and
    a membership or an admin role of nobody means nothing: those rows are left out, with a
    Note. Any other reference to a shared row that is gone (a customer's currency, a
    sale's state) still refuses the restore: leaving such a row out would make the restore
    delete the live row with its key (a customer and all their invoices), and an edited
    archive would get the same pass."""
    users = mapping.users_table
    if users not in scope.shared:
        return frozenset()
    return frozenset((table, users) for table in (mapping.membership_table,
                                                  mapping.role_assignments_table) if table)


def read_every_row(conn, archive: OpenArchive, scope: OrganizationScope,
                    plans: list[TablePlan], org_id: int, guard: UserGuard,
                    progress: ProgressCallback | None, cancel: CancelFlag | None,
                    also: Callable[[TablePlan, list[Sequence]], None] | None = None) -> None:
    """Every row of every table, restored or not: counts and checksums, and for the
    restored tables values, owners, references and clashes (RowChecker),
    and the users' rights (restore.privileges.UserGuard). `also` sees each restored
    table's batch (as decoded columns) after those checks, so the archive is read once."""
    checker = RowChecker(conn, scope, plans, org_id, user_links(guard.mapping, scope))
    restored = {p.name: p for p in plans}
    entries = [p.entry for p in plans] + [
        e for e in archive.manifest.tables if e.name not in restored]
    total = sum(e.rows for e in entries)
    done = 0
    for index, entry in enumerate(entries):
        plan = restored.get(entry.name)
        for batch in archive.batches(entry):
            stop_if_cancelled(cancel)
            if plan is not None:
                columns = plan.decode_columns(batch)
                checker.check_batch(plan, columns)
                if guard.covers(plan.name):
                    guard.check_batch(conn, plan.table, plan.columns, columns)
                if also is not None:
                    also(plan, columns)
            done += len(batch)
            if progress:
                progress(Progress(entry.name, index, len(entries), done, total))
    checker.finish()


class RowChecker:
    """Reads every row of the archive once, before anything changes, and proves it fits.

    What it keeps is bounded: the backup's keys (KeySet), the references it could not yet
    match with a key of the backup (few, and looked up in the database in batches), and
    only where a foreign key points at something other than a primary key, that column's
    values."""

    def __init__(self, conn: Connection, scope: OrganizationScope, plans: list[TablePlan],
                 org_id: int, links: frozenset[tuple[str, str]] = frozenset()) -> None:
        self.conn = conn
        self.links = links  # (table, users table): see user_links
        self.scope = scope
        self.plans = plans
        self.by_name = {p.name: p for p in plans}
        self.order = {p.name: i for i, p in enumerate(plans)}
        self.org_id = org_id
        # references not (yet) found among the backup's keys, per (table, foreign key)
        self.pending: dict[tuple[str, ForeignKeyConstraint], set[Key]] = {}
        # for each pending reference, the key of a row that makes it: a refusal names it
        self.example: dict[tuple[str, ForeignKeyConstraint], dict[Key, Key]] = {}
        # (table, columns) that children refer to by something other than the primary key
        self.wanted: dict[tuple[str, tuple[str, ...]], set[Key]] = {}
        for plan in plans:
            for fk in self._foreign_keys(plan):
                parent = fk.elements[0].column.table.name
                cols = tuple(e.column.name for e in fk.elements)
                if parent in self.by_name and list(cols) != self.by_name[parent].key:
                    self.wanted[(parent, cols)] = set()
        for plan in plans:
            for hop in (*plan.scope.path[:1], *plan.scope.alternatives):
                parent = self.by_name.get(hop.parent_table)
                if parent is not None and [hop.parent_column] != parent.key:
                    self.wanted[(hop.parent_table, (hop.parent_column,))] = set()
        self.hop_values: dict[str, set[Key]] = {}
        # declared ways (restore of a table with several): parent keys named, per hop
        self.way_values: dict[tuple[str, Hop], set[Key]] = {}
        self.unique = {p.name: [k for k in unique_keys(p.table)
                                if all(c in p.columns for c in k)] for p in plans}
        self.done: set[str] = set()  # tables read to the end, their keys sealed
        # per table, orphans holding a backup row's unique key: their key -> the refusal
        self.spared: dict[str, dict[Key, str]] = {}
        self.reading: TablePlan | None = None
        self.cached: deque[KeySet] = deque()  # key sets kept for lookups (_keep_cached)

    @staticmethod
    def _foreign_keys(plan: TablePlan) -> list[ForeignKeyConstraint]:
        return [c for c in plan.table.constraints
                if isinstance(c, ForeignKeyConstraint) and c.elements
                and all(col.name in plan.columns for col in c.columns)]

    def _end_table(self) -> None:
        if self.reading is not None:
            keys = self.reading.backup_keys
            keys.seal(self.reading.name)
            if keys.cache():
                self._keep_cached(keys)
            self.done.add(self.reading.name)
            self.reading = None

    def _keep_cached(self, keys: KeySet) -> None:
        """The newest cached key sets, CACHED_KEYS keys at most in all, the oldest released
        first: children come soon after their parents, and a released table's keys are
        still found (in its sorted array, a little slower). Every table kept its set until
        the end of the check before, which took a 1.2M-row restore to 220 MB."""
        self.cached.append(keys)
        while len(self.cached) > 1 and sum(map(len, self.cached)) > CACHED_KEYS:
            self.cached.popleft().release()

    def check_batch(self, plan: TablePlan, columns: list[Sequence]) -> None:
        """Ownership, duplicate keys and clashes of one batch (as TablePlan.decode_columns
        gives it); collects references. Tables come one after the other, in plan order."""
        if self.reading is not plan:
            self._end_table()
            self.reading = plan
        count = len(columns[0]) if columns else 0
        if not count:
            return
        names = plan.columns
        if not plan.scope.simple:
            self._check_ways(plan, columns)
        elif plan.scope.tenant_column:
            owners = columns[names.index(plan.scope.tenant_column)]
            strays = [] if owners.count(self.org_id) == count else [
                v for v in owners if v is None or self._another(v)]
            if strays:
                raise RestoreRefused(
                    f"Table {plan.name} in the backup holds a row of another organization "
                    f"({plan.scope.tenant_column} {strays[0]!r}); the backup has been "
                    "tampered with or mixed up, and was refused.")
        else:
            hop = set(columns[names.index(plan.scope.path[0].column)])
            self.hop_values.setdefault(plan.name, set()).update(norm((v,)) for v in hop)
        if plan.keyed:
            plan.backup_keys.add(plan.name, plan.key, [columns[i] for i in plan.key_index])
        for (table, cols), values in self.wanted.items():
            if table == plan.name:
                values.update(map(norm, zip(*[columns[names.index(c)] for c in cols],
                                            strict=True)))
        row_keys = [columns[i] for i in plan.key_index] if plan.keyed else None
        for fk in self._foreign_keys(plan):
            self._collect(plan, fk, [columns[names.index(c.name)] for c in fk.columns],
                          row_keys)
        self._check_clashes(plan, columns)

    def _another(self, tenant_value: object) -> bool:
        """Whether a tenant column's value names another organization than this one; an id
        kept as text ('1', roles.scope) names the same organization as the number."""
        return tenant_value != self.org_id and str(tenant_value) != str(self.org_id)

    def _check_ways(self, plan: TablePlan, columns: list[Sequence]) -> None:
        """A declared table with several ways to its owner (mixed, several parents, a
        polymorphic pair): judged by the LIVE map, whatever the archive claims. An own tenant
        column may only hold this organization's id; every parent a row names (a polymorphic
        type names one) must be this organization's, checked in finish(); a row with no way
        at all, or a type the map does not know, belongs to no organization."""
        scope, names = plan.scope, plan.columns
        way_columns = [columns[names.index(c)] for c in scope.owner_columns if c in names]
        if scope.polymorphic and scope.polymorphic.type_column in names:
            way_columns.append(columns[names.index(scope.polymorphic.type_column)])
        if any(all(v is None for v in row) for row in zip(*way_columns, strict=True)):
            raise RestoreRefused(f"Table {plan.name} in the backup has rows that name no "
                                 "owner at all; they belong to no organization.")
        if scope.tenant_column:
            other = next((v for v in columns[names.index(scope.tenant_column)]
                          if v is not None and self._another(v)), None)
            if other is not None:
                raise RestoreRefused(
                    f"Table {plan.name} in the backup holds a row of another organization "
                    f"({scope.tenant_column} {other!r}); the backup has been tampered with or "
                    "mixed up, and was refused.")
        for hop in (*scope.path[:1], *scope.alternatives):
            values = {norm((v,)) for v in columns[names.index(hop.column)] if v is not None}
            self.way_values.setdefault((plan.name, hop), set()).update(values)
        if scope.polymorphic:
            self._collect_polymorphic(plan, columns)

    def _collect_polymorphic(self, plan: TablePlan, columns: list[Sequence]) -> None:
        poly, names = plan.scope.polymorphic, plan.columns
        assert poly is not None
        parents = dict(poly.types)
        types = columns[names.index(poly.type_column)]
        ids = columns[names.index(poly.id_column)]
        for kind, value in zip(types, ids, strict=True):
            if kind is None and value is None:
                continue
            if kind not in parents or value is None:
                raise RestoreRefused(
                    f"Table {plan.name} in the backup has a row of type {kind!r} "
                    f"({poly.id_column} {value!r}) that the ownership map gives to no table; "
                    "it belongs to no organization, so the backup was refused.")
            parent = self.scope.metadata.tables[parents[kind]]
            key = next(iter(parent.primary_key.columns)).name
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                value = int(value)  # an id kept as text names an integer key
            hop = Hop(poly.id_column, parents[kind], key)
            self.way_values.setdefault((plan.name, hop), set()).add(norm((value,)))

    def _stray_parents(self, hop: Hop, values: set[Key]) -> set[Key]:
        """Of `values` (parent keys), those that are neither rows of the backup's parent
        table nor this organization's rows of the database."""
        if hop.parent_table in self.by_name:
            return set(self._not_in_backup(hop.parent_table, (hop.parent_column,), values))
        parent_scope = self.scope.owners.get(hop.parent_table) or self.scope.get(
            hop.parent_table)
        parent = self.scope.metadata.tables[hop.parent_table]
        where = owned(self.scope, parent_scope, self.org_id) if parent_scope else None
        return set(missing_values(self.conn, parent, (hop.parent_column,), values, where))

    def _collect(self, plan: TablePlan, fk: ForeignKeyConstraint, columns: list[Sequence],
                 row_keys: list[Sequence] | None) -> None:
        """Keep the references that are not keys of the backup (or not known yet)."""
        parent_name = fk.elements[0].column.table.name
        cols = tuple(e.column.name for e in fk.elements)
        parent = self.by_name.get(parent_name)
        ready = parent is not None and parent_name in self.done
        if len(columns) == 1:
            distinct = set(columns[0])
            distinct.discard(None)
            keys = parent.backup_keys if ready and list(cols) == parent.key else None
            if keys is not None and keys.ints is not None:
                found = keys.present_ints(v for v in distinct if type(v) is int)
                values = {norm((v,)) for v in distinct if v not in found}
            else:
                values = {norm((v,)) for v in distinct}
        else:
            values = {norm(v) for v in zip(*columns, strict=True)
                      if all(x is not None for x in v)}
        if ready and values:
            values = self._not_in_backup(parent_name, cols, values)
        if not values:
            return
        pending = self.pending.setdefault((plan.name, fk), set())
        pending.update(values)
        self._remember_rows(plan.name, fk, columns, row_keys, values)
        if len(pending) > PENDING_LIMIT and (parent is None or ready):
            self._look_up(plan.name, fk, pending)  # keeps memory bounded
            pending.clear()
            self.example.pop((plan.name, fk), None)

    def _remember_rows(self, name: str, fk: ForeignKeyConstraint, columns: list[Sequence],
                       row_keys: list[Sequence] | None, values: set[Key]) -> None:
        """A row of the backup for each new pending reference (the loop runs only while
        new references appear: shared lookups repeat the same few values)."""
        example = self.example.setdefault((name, fk), {})
        if row_keys is None or values.issubset(example):
            return
        for at, reference in enumerate(zip(*columns, strict=True)):
            value = norm(reference)
            if value in values and value not in example:
                example[value] = tuple(k[at] for k in row_keys)

    def _check_clashes(self, plan: TablePlan, columns: list[Sequence]) -> None:
        keys = self.unique[plan.name]
        if plan.keyed and len(plan.key) == 1 and plan.backup_keys.ints is not None:
            values = columns[plan.key_index[0]]
            ordered = all(map(operator.lt, values, islice(values, 1, None)))
            if ordered and not taken_in_range(self.conn, self.scope, plan, self.org_id,
                                              values):
                keys = [k for k in keys if list(k) != plan.key]
        if keys:
            rows = list(zip(*columns, strict=True))
            clash = find_clash(self.conn, self.scope, plan, self.org_id, rows, keys,
                               spare_orphans=True)
            if clash:
                raise RestoreRefused(clash)
            # orphans holding a unique key are judged at the end (_adopt_orphans)
            self.spared.setdefault(plan.name, {}).update(
                orphans_holding(self.conn, self.scope, plan, rows, keys))

    def _not_in_backup(self, table: str, cols: tuple[str, ...], values: set[Key]) -> set[Key]:
        plan = self.by_name[table]
        if list(cols) == plan.key:
            return plan.backup_keys.missing(values)
        return values - self.wanted[(table, cols)]

    def _look_up(self, name: str, fk: ForeignKeyConstraint, values: set[Key]) -> None:
        """References the backup cannot satisfy must be rows of the database (of another
        organization, or shared); refuse when any is neither, but for a user deleted since
        the backup: their memberships and role assignments are left out instead (user_links)."""
        parent_name = fk.elements[0].column.table.name
        parent = self.scope.metadata.tables.get(parent_name)
        if parent is None or not values:
            return
        cols = tuple(e.column.name for e in fk.elements)
        lost = missing_values(self.conn, parent, cols, values,
                              self._may_point_at(parent_name))
        plan = self.by_name[name]
        if lost and (name, parent_name) in self.links:
            # A user deleted since the backup, from a table no tenant restore writes: their
            # links to the organization are left out (settle_left_out), not the restore refused.
            plan.leave_out_rule(tuple(c.name for c in fk.columns), parent_name,
                                True).values.update(lost)
            values = values - set(lost)
        elif lost:
            self._refuse_reference(name, fk, lost)
        if plan.outside is not None:
            known = plan.outside.setdefault(fk, set())
            known.update(values)
            if sum(map(len, plan.outside.values())) > OUTSIDE_LIMIT:
                plan.outside = None

    def _may_point_at(self, parent_name: str) -> ColumnElement | None:
        """The rows of a parent table that a reference from outside the backup may reach:
        any row of a shared table; of an organization's table, only rows that belong to no
        organization, or this organization's rows that the restore keeps (tables it does
        not restore). Never another organization's row."""
        parent_scope = self.scope.get(parent_name)
        if parent_scope is None:
            return None
        nobody = self.scope.unowned(parent_scope)
        if parent_name in self.by_name:  # its rows not in the backup are removed
            return nobody
        return or_(nobody, owned(self.scope, parent_scope, self.org_id))

    def _refuse_reference(self, name: str, fk: ForeignKeyConstraint, lost: list[Key]) -> None:
        """Name the table, the row and the column of a reference the restore cannot keep."""
        parent_name = fk.elements[0].column.table.name
        parent = self.scope.metadata.tables[parent_name]
        cols = tuple(e.column.name for e in fk.elements)
        exist = set(lost) - set(missing_values(self.conn, parent, cols, set(lost)))
        value = sorted(exist or lost, key=repr)[0]
        child_cols = ", ".join(c.name for c in fk.columns)
        row = self.example.get((name, fk), {}).get(value)
        plan = self.by_name[name]
        where = (f"row {', '.join(f'{c} {v}' for c, v in zip(plan.key, row, strict=True))}"
                 if row is not None else "a row")
        shown = ", ".join(map(str, value))
        if exist:
            raise RestoreRefused(
                f"Table {name}, {where}: {child_cols} {shown} points at a {parent_name} row "
                "of another organization; a restore never links one organization's data to "
                "another's, so the backup was refused.")
        rows = f"{len(lost)} {parent_name} row" + (" that is" if len(lost) == 1 else "s that are")
        raise RestoreRefused(
            f"Table {name} in the backup refers to {rows} neither in the backup nor in the "
            f"database ({where}: {child_cols} {shown}); restoring it would break the data.")

    def finish(self) -> None:
        """Every row's owner and every reference, once all tables have been read."""
        self._end_table()
        for plan in self.plans:
            if plan.name not in self.done:  # no batch at all: an empty table
                plan.backup_keys.seal(plan.name)
                self.done.add(plan.name)
        for (name, hop), values in self.way_values.items():
            stray = self._stray_parents(hop, values)
            if stray:
                raise _not_ours(name, hop, stray)
        for plan in self.plans:
            if not plan.scope.path or not plan.scope.simple:
                continue
            hop = plan.scope.path[0]
            values = self.hop_values.get(plan.name, set())
            if (None,) in values:
                raise RestoreRefused(f"Table {plan.name} in the backup has rows without their "
                                     f"{hop.column}; they belong to no organization.")
            if hop.parent_table in self.by_name:
                stray = self._not_in_backup(hop.parent_table, (hop.parent_column,), values)
            else:
                parent_scope = self.scope.get(hop.parent_table)
                parent = self.scope.metadata.tables[hop.parent_table]
                where = owned(self.scope, parent_scope, self.org_id) if parent_scope else None
                stray = set(missing_values(self.conn, parent, (hop.parent_column,), values,
                                           where))
            if stray:
                raise _not_ours(plan.name, hop, stray)
        for (name, fk), values in self.pending.items():
            parent_name = fk.elements[0].column.table.name
            if parent_name in self.by_name:
                values = self._not_in_backup(
                    parent_name, tuple(e.column.name for e in fk.elements), values)
            self._look_up(name, fk, values)
        for plan in self.plans:
            self._adopt_orphans(plan)
        for plan in self.plans:
            plan.backup_keys.release()

    def _adopt_orphans(self, plan: TablePlan) -> None:
        """Live rows of nobody whose every parent is gone (OrganizationScope.orphaned) and
        comes back with the backup are the organization's own (issue 20): after the restore
        they would be its rows again, so they are adopted (TablePlan.adopted) and get the
        backup's values, or go when the backup lacks them, never left dangling. An orphan
        whose parents the backup does not bring back stays nobody's: a backup's row with
        its key is refused, as the clash it is (the check spared it while reading)."""
        orphaned = self.scope.orphaned(plan.scope)
        if orphaned is None or not plan.keyed:
            return
        table, scope = plan.table, plan.scope
        spared = self.spared.get(plan.name, {})
        names = list(dict.fromkeys([*plan.key, *self._way_columns(plan)]))
        query = select(*[table.c[c] for c in names]).where(orphaned)
        for row in self.conn.execute(query):
            values = dict(zip(names, row, strict=True))
            key = tuple(values[c] for c in plan.key)
            if self._parents_come_back(scope, values):
                plan.adopted.append(key)
            elif plan.backup_keys.contains(norm(key)):
                raise RestoreRefused(clash_words(plan.name, list(zip(plan.key, key,
                                                                     strict=True))))
            elif norm(key) in spared:
                raise RestoreRefused(spared[norm(key)])

    @staticmethod
    def _way_columns(plan: TablePlan) -> list[str]:
        scope = plan.scope
        poly = [scope.polymorphic.type_column, scope.polymorphic.id_column] \
            if scope.polymorphic else []
        return [h.column for h in (*scope.path[:1], *scope.alternatives)] + poly

    def _parents_come_back(self, scope: TableScope, values: dict) -> bool:
        """Whether every parent an orphan names is a row of the backup."""
        named = [(h.parent_table, h.parent_column, values[h.column])
                 for h in (*scope.path[:1], *scope.alternatives) if values[h.column] is not None]
        poly = scope.polymorphic
        if poly is not None and values[poly.id_column] is not None:
            parent_name = dict(poly.types).get(values[poly.type_column])
            if parent_name is None:
                return False
            value = values[poly.id_column]
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                value = int(value)  # an id kept as text names an integer key
            key = next(iter(self.scope.metadata.tables[parent_name].primary_key.columns))
            named.append((parent_name, key.name, value))
        return bool(named) and all(
            parent in self.by_name
            and not self._not_in_backup(parent, (column,), {norm((value,))})
            for parent, column, value in named)


def _not_ours(table: str, hop: Hop, stray: set[Key]) -> RestoreRefused:
    """Rows of `table` that name a parent this organization does not have."""
    example = sorted(stray, key=repr)[0][0]
    return RestoreRefused(
        f"Table {table} in the backup has rows whose {hop.column} ({example!r}) is not one "
        f"of this organization's {hop.parent_table}; the backup has been tampered with or "
        "mixed up, and was refused.")


# --- rows left out ---------------------------------------------------------------------------

def settle_left_out(archive: OpenArchive, plans: list[TablePlan], cancel: CancelFlag | None,
                    uncount: Callable[[TablePlan, list[tuple]], None]) -> list[str]:
    """Once every row is checked: which rows the restore leaves out, and the warnings that say so.

    RowChecker gave the rules for the links of users deleted since the backup (user_links).
    Every row of the backup that depends on a left-out row, through a foreign key or a way
    to its owner (a polymorphic pair too), is left out as well, so nothing dangles: the
    tables with rules are read again (only those: nearly always none) until no rule grows.
    Then their left-out rows are counted, their keys leave the backup's keys, and `uncount`
    takes them out of the preview's counts."""
    if not any(p.leave_out for p in plans):
        return []
    read: dict[str, int] = {}  # per table, how many values its rules had when last read
    while True:
        grown = [p for p in plans if p.leave_out and _size(p) != read.get(p.name)]
        if not grown:
            break
        for plan in grown:
            read[plan.name] = _size(plan)
            wanted = _referenced(plan, plans)
            values: dict[tuple[str, ...], set[Key]] = {cols: set() for cols in wanted}
            for gone in _left_out_rows(archive, plan, cancel):
                for cols, found in values.items():
                    found.update(norm(row[plan.columns.index(c)] for c in cols)
                                 for row in gone)
            _rules_into(plan, plans, values)
    warnings = []
    for plan in plans:
        if not plan.leave_out:
            continue
        keys: list[Key] = []
        for gone in _left_out_rows(archive, plan, cancel):
            plan.left_out += len(gone)
            uncount(plan, gone)
            if plan.keyed:
                keys += [tuple(row[i] for i in plan.key_index) for row in gone]
        plan.backup_keys.discard(keys)
        if plan.left_out:
            warnings.append(left_out_words(plan))
    return warnings


def _size(plan: TablePlan) -> int:
    return sum(len(rule.values) for rule in plan.leave_out)


def _left_out_rows(archive: OpenArchive, plan: TablePlan,
                   cancel: CancelFlag | None) -> Iterator[list[tuple]]:
    """The table's rows its rules leave out, batch by batch (batches without any skipped)."""
    for batch in archive.batches(plan.entry):
        stop_if_cancelled(cancel)
        gone = [row for row in plan.decode_batch(batch) if plan.leaves_out(row)]
        if gone:
            yield gone


def _links_into(plan: TablePlan, plans: list[TablePlan]
                 ) -> list[tuple[TablePlan, tuple[str, ...], tuple[str, ...]]]:
    """(child, child columns, `plan`'s columns) for every way a row of `plans` (the table
    itself too: a self-reference) refers to a row of `plan`: its foreign keys and the hops
    of its owner's ways."""
    links = []
    for child in plans:
        for fk in RowChecker._foreign_keys(child):
            if fk.elements[0].column.table.name == plan.name:
                links.append((child, tuple(c.name for c in fk.columns),
                              tuple(e.column.name for e in fk.elements)))
        for hop in (*child.scope.path[:1], *child.scope.alternatives):
            if hop.parent_table == plan.name and hop.column in child.columns:
                links.append((child, (hop.column,), (hop.parent_column,)))
    return links


def _polymorphic_into(plan: TablePlan, plans: list[TablePlan]) -> list[tuple[TablePlan, str]]:
    """(child, its type value) for every polymorphic pair of `plans` that names `plan`'s rows."""
    found = []
    for child in plans:
        poly = child.scope.polymorphic
        if poly is None or not {poly.type_column, poly.id_column} <= set(child.columns):
            continue
        found += [(child, kind) for kind, table in poly.types if table == plan.name]
    return found


def _referenced(plan: TablePlan, plans: list[TablePlan]) -> set[tuple[str, ...]]:
    """The columns of `plan` that rows of `plans` refer to."""
    wanted = {parent_cols for _child, _cols, parent_cols in _links_into(plan, plans)}
    if _polymorphic_into(plan, plans) and len(plan.key) == 1:
        wanted.add((plan.key[0],))
    return wanted


def _rules_into(plan: TablePlan, plans: list[TablePlan],
                 values: dict[tuple[str, ...], set[Key]]) -> None:
    """The rows of `plans` that refer to `plan`'s left-out rows are left out too."""
    for child, cols, parent_cols in _links_into(plan, plans):
        if values.get(parent_cols):
            child.leave_out_rule(cols, plan.name, False).values.update(values[parent_cols])
    for child, kind in _polymorphic_into(plan, plans):
        ids = values.get((plan.key[0],)) if len(plan.key) == 1 else None
        if not ids:
            continue
        poly = child.scope.polymorphic
        assert poly is not None
        # an id kept as text names the same row as the number (see _collect_polymorphic)
        pairs = {(kind, v) for (v,) in ids} | {(kind, str(v)) for (v,) in ids}
        child.leave_out_rule((poly.type_column, poly.id_column), plan.name,
                             False).values.update(pairs)


def left_out_words(plan: TablePlan) -> str:
    """'user_company: 1 row of the backup was not put back because it belongs to users row
    id 4, deleted since the backup (…)'."""
    one = plan.left_out == 1
    reasons = []
    shared = [rule for rule in plan.leave_out if rule.shared and rule.values]
    for rule in shared:
        column = rule.columns[0] if len(rule.columns) == 1 else ", ".join(rule.columns)
        ids = sorted(rule.values, key=repr)
        shown = ", ".join(", ".join(map(str, v)) for v in ids[:5]) + (
            f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        target = _parent_column(plan, rule) or column
        rows = "row" if len(ids) == 1 else "rows"
        reasons.append(f"{rule.parent} {rows} {target} {shown}, deleted since the backup")
    parents = sorted({rule.parent for rule in plan.leave_out if not rule.shared})
    if parents:
        reasons.append(" and ".join(f"{p} rows" for p in parents) + " left out as well")
    why = ("it belongs" if one else "they belong") + " to " + ", or to ".join(reasons)
    sharing = sorted({rule.parent for rule in shared})
    note = (f" ({' and '.join(sharing)} rows are shared by every organization, and a restore "
            "of one organization never brings them back)"
            if sharing else " (so that nothing points at a row that is not there)")
    count = "1 row of the backup was" if one else f"{plan.left_out:,} rows of the backup were"
    return f"{plan.name}: {count} not put back because {why}{note}."


def _parent_column(plan: TablePlan, rule) -> str | None:
    """The referenced column ('id') of a single-column foreign key rule, for the words."""
    for fk in RowChecker._foreign_keys(plan):
        if tuple(c.name for c in fk.columns) == rule.columns and len(rule.columns) == 1:
            return fk.elements[0].column.name
    return None
