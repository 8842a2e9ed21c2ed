"""Which tables and rows belong to an organization, discovered from the live schema.

An organization owns every row of a table that has the tenant column (``organization_id``)
set to its id, and every row of a child table reached from those rows through foreign keys,
at any depth (``user_permissions`` through ``users.user_id``; return line items through their
transaction). Nothing here is a list of table names: a new table in the billing database is
backed up the day it appears. Shared reference tables (``states``) are parents, never
children, so no path reaches them and they are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import MetaData, Table, select
from sqlalchemy.sql.elements import ColumnElement

from desktop_backup.config import SchemaMapping

# The console's own bookkeeping: never part of an organization's data.
CONSOLE_TABLES = frozenset({"auto_backup_logs", "desktop_backup_audit", "desktop_backup_keys",
                            "desktop_backup_offsite", "desktop_backup_encryption",
                            "desktop_backup_recovery_sheets",
                            "desktop_backup_login_failures", "desktop_backup_runs"})


@dataclass(frozen=True)
class Hop:
    """One foreign-key step from a child table up to its parent."""

    column: str
    parent_table: str
    parent_column: str


@dataclass(frozen=True)
class TableScope:
    """How one table's rows are selected for an organization."""

    name: str
    tenant_column: str | None  # set when the table carries the tenant column itself
    path: tuple[Hop, ...] = ()  # otherwise: the hops from this table up to a tenant table
    root_column: str | None = None  # and the tenant column of the table the path ends at

    @property
    def how(self) -> str:
        if self.tenant_column:
            return f"{self.name}.{self.tenant_column} = organization id"
        steps = [f"{self.name}.{self.path[0].column}"]
        steps += [f"{h.parent_table}.{h.parent_column}" for h in self.path]
        return " -> ".join(steps) + " (through its parent rows)"

    def describe(self) -> dict:
        """The manifest's record of how the rows were chosen."""
        if self.tenant_column:
            return {"how": "tenant_column", "column": self.tenant_column}
        return {"how": "parent", "tenant_column": self.root_column, "path": [
            {"column": h.column, "parent_table": h.parent_table, "parent_column": h.parent_column}
            for h in self.path]}


@dataclass
class OrganizationScope:
    """The tables an organization's backup holds, parents before children."""

    tables: list[TableScope]
    metadata: MetaData
    left_out: dict[str, str] = field(default_factory=dict)  # table -> why it is not included

    def names(self) -> list[str]:
        return [t.name for t in self.tables]

    def get(self, name: str) -> TableScope | None:
        return next((t for t in self.tables if t.name == name), None)

    def predicate(self, scope: TableScope, org_id: int) -> ColumnElement[bool]:
        """The WHERE clause that picks this organization's rows of one table."""
        table = self.metadata.tables[scope.name]
        if scope.tenant_column:
            return table.c[scope.tenant_column] == org_id
        hop = scope.path[0]
        parent_scope = self._scope_of_path(scope)
        parent = self.metadata.tables[hop.parent_table]
        parent_ids = select(parent.c[hop.parent_column]).where(
            self.predicate(parent_scope, org_id))
        return table.c[hop.column].in_(parent_ids)

    def unowned(self, scope: TableScope) -> ColumnElement[bool]:
        """Rows of the table that belong to no organization (a NULL owner, or a NULL link
        to the parent that would own them)."""
        table = self.metadata.tables[scope.name]
        return table.c[scope.tenant_column or scope.path[0].column].is_(None)

    @staticmethod
    def _scope_of_path(scope: TableScope) -> TableScope:
        """The parent's own scope, rebuilt from the path (the parent may be narrowed away)."""
        hop, rest = scope.path[0], scope.path[1:]
        if rest:
            return TableScope(hop.parent_table, None, rest, scope.root_column)
        return TableScope(hop.parent_table, scope.root_column)


NARROWED = "not in this organization's auto_backup_tables"  # OrganizationScope.left_out


def discover_scope(metadata: MetaData, mapping: SchemaMapping,
                   only: Iterable[str] | None = None) -> OrganizationScope:
    """Find the organization-owned tables in a reflected schema.

    `only` is ``organizations.auto_backup_tables`` when set: it narrows the result to the
    named tables (a child keeps its path through parents that were left out).
    """
    candidates = {name: t for name, t in metadata.tables.items()
                  if name not in CONSOLE_TABLES and name != mapping.tenant_table}
    scopes: dict[str, TableScope] = {}
    for name, table in candidates.items():
        column = _tenant_column(table, mapping)
        if column:
            scopes[name] = TableScope(name, column)
    # Breadth first, so each child gets its shortest path to a tenant-column table.
    frontier = set(scopes)
    while frontier:
        reached: dict[str, TableScope] = {}
        for name in sorted(set(candidates) - set(scopes)):
            for fk in sorted(candidates[name].foreign_keys, key=_ownership_rank):
                parent = fk.column.table.name
                if parent in frontier and parent != name:
                    hop = Hop(fk.parent.name, parent, fk.column.name)
                    parent_scope = scopes[parent]
                    reached[name] = TableScope(
                        name, None, (hop, *parent_scope.path),
                        parent_scope.tenant_column or parent_scope.root_column)
                    break
        scopes.update(reached)
        frontier = set(reached)
    left_out = {name: "no organization column and no foreign key path to one"
                for name in candidates if name not in scopes}
    if only is not None:
        wanted = set(only)
        for name in list(scopes):
            if name not in wanted:
                left_out[name] = NARROWED
        kept = {name: s for name, s in scopes.items() if name in wanted}
    else:
        kept = scopes
    ordered = [kept[name] for name in fk_order(metadata, kept)]
    return OrganizationScope(ordered, metadata, left_out)


def _ownership_rank(fk) -> tuple:
    """Which foreign key says who owns a row: a cascading, required one before a lookup.

    A return line item points at its return (ON DELETE CASCADE, NOT NULL) and at an item
    (nullable): the first is its owner, and a line whose item was cleared still belongs.
    """
    cascades = (fk.ondelete or "").lower() == "cascade"
    return (not cascades, fk.parent.nullable, fk.parent.name)


def _tenant_column(table: Table, mapping: SchemaMapping) -> str | None:
    """The tenant column itself, or any column with a foreign key to the tenant table."""
    if mapping.tenant_column in table.c:
        return mapping.tenant_column
    for fk in table.foreign_keys:
        if fk.column.table.name == mapping.tenant_table:
            return fk.parent.name
    return None


def fk_order(metadata: MetaData, names: Iterable[str]) -> list[str]:
    """Parents before children (Kahn's algorithm, ties by name; cycles broken by name).

    Self-references are ignored here; the restore orders such rows itself.
    """
    names = set(names)
    parents: dict[str, set[str]] = {n: set() for n in names}
    for name in names:
        for fk in metadata.tables[name].foreign_keys:
            parent = fk.column.table.name
            if parent in names and parent != name:
                parents[name].add(parent)
    ordered: list[str] = []
    remaining = dict(parents)
    while remaining:
        ready = sorted(n for n, deps in remaining.items() if not deps & remaining.keys())
        if not ready:  # a cycle: take the alphabetically first table and go on
            ready = [min(remaining)]
        for name in ready:
            ordered.append(name)
            del remaining[name]
    return ordered
