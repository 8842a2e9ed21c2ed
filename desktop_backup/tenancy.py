"""Which tables and rows belong to an organization: reflection proposes, declarations decide.

Reflection: an organization owns every row of a table that has the tenant column
(``organization_id``) set to its id, and every row of a child table reached from those rows
through foreign keys, at any depth (``user_permissions`` through ``users.user_id``; return line
items through their transaction). A new table in the billing database is backed up the day it
appears. Tables no path reaches are shared reference data when the organization's rows point
at them (``states``), the web framework's own (``migrations``), or else left out *and named*.

Declarations (:mod:`desktop_backup.ownership`, in the mapping) override the proposal for
schemas reflection cannot read: a tenant column without a foreign key, several parents, a
polymorphic (type, id) pair, a table owned either way, a shared table with a legacy tenant
column. Every table of the database ends up backed up, shared or left out, with a reason
(:meth:`OrganizationScope.table_map`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import (
    MetaData,
    String,
    Table,
    Text,
    and_,
    case,
    exists,
    func,
    not_,
    or_,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from desktop_backup.config import SchemaMapping
from desktop_backup.errors import UsageError
from desktop_backup.ownership import Declaration, Ownership, Polymorphic, check_declarations

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


class KeyAsText(FunctionElement):
    """A parent's integer key compared with an id kept as text (a polymorphic pair)."""

    type = String()
    inherit_cache = True
    name = "key_as_text"


@compiles(KeyAsText)
def _key_as_text(element, compiler, **kw) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS VARCHAR(64))"


@compiles(KeyAsText, "mysql")
def _key_as_text_mysql(element, compiler, **kw) -> str:
    """MySQL compares text with a number as numbers; a cast would give the text the
    connection's collation, which clashes with the column's."""
    return compiler.process(element.clauses, **kw)


@dataclass(frozen=True)
class TableScope:
    """How one table's rows are selected for an organization.

    Reflection fills `tenant_column` or `path`; a declaration (ownership.py) may add
    alternative parents and a polymorphic pair, and a row is the organization's when any
    of its ways says so (a customer's address through the customer, the company's own
    address through its tenant column).
    """

    name: str
    tenant_column: str | None  # set when the table carries the tenant column itself
    path: tuple[Hop, ...] = ()  # otherwise: the hops from this table up to a tenant table
    root_column: str | None = None  # and the tenant column of the table the path ends at
    alternatives: tuple[Hop, ...] = ()  # declared: further parents, any of which owns a row
    polymorphic: Polymorphic | None = None  # declared: (type, id) -> one of several parents
    declared: bool = False

    @property
    def simple(self) -> bool:
        """One way to the organization, as reflection finds them (what the restore's row
        checks were written for)."""
        ways = bool(self.tenant_column) + bool(self.path) + len(self.alternatives)
        return ways == 1 and self.polymorphic is None

    @property
    def owner_columns(self) -> list[str]:
        """The columns that name a row's owner; all NULL: the row belongs to nobody."""
        columns = [self.tenant_column] if self.tenant_column else []
        columns += [h.column for h in (*self.path[:1], *self.alternatives)]
        columns += [self.polymorphic.id_column] if self.polymorphic else []
        return columns

    @property
    def how(self) -> str:
        ways = []
        if self.tenant_column:
            ways.append(f"{self.name}.{self.tenant_column} = organization id")
        if self.path:
            steps = [f"{self.name}.{self.path[0].column}"]
            steps += [f"{h.parent_table}.{h.parent_column}" for h in self.path]
            ways.append(" -> ".join(steps) + " (through its parent rows)")
        ways += [f"{self.name}.{h.column} -> {h.parent_table}.{h.parent_column} (through its "
                 "parent rows)" for h in self.alternatives]
        if self.polymorphic:
            poly = self.polymorphic
            types = ", ".join(f"{value!r} -> {table}" for value, table in poly.types)
            ways.append(f"{self.name}.({poly.type_column}, {poly.id_column}) -> one of "
                        f"{types}")
        return " or ".join(ways)

    def describe(self) -> dict:
        """The manifest's record of how the rows were chosen."""
        if self.declared:
            return {"how": "declared", "text": self.how}
        if self.simple and self.tenant_column:
            return {"how": "tenant_column", "column": self.tenant_column}
        if self.simple and self.path:
            return {"how": "parent", "tenant_column": self.root_column, "path": [
                {"column": h.column, "parent_table": h.parent_table,
                 "parent_column": h.parent_column} for h in self.path]}
        return {"how": "declared", "text": self.how}


@dataclass
class OrganizationScope:
    """The tables an organization's backup holds, parents before children, and what
    happens to every other table of the database."""

    tables: list[TableScope]
    metadata: MetaData
    left_out: dict[str, str] = field(default_factory=dict)  # table -> why it is not included
    shared: dict[str, str] = field(default_factory=dict)  # table -> why it is everyone's
    owners: dict[str, TableScope] = field(default_factory=dict)  # every owned table, narrowed too

    def names(self) -> list[str]:
        return [t.name for t in self.tables]

    def get(self, name: str) -> TableScope | None:
        return next((t for t in self.tables if t.name == name), None)

    def unplaced(self) -> dict[str, str]:
        """Tables left out for any reason but the organization's own narrowing."""
        return {n: why for n, why in self.left_out.items() if why != NARROWED}

    def table_map(self, saved: Iterable[str] | None = None) -> dict[str, dict[str, str]]:
        """Every table of the database and what a backup does with it (the manifest's
        ``scope.map``, and ``desktop-backup scope``): backed up (how), shared or left out (why).
        `saved`: the tables the archive holds, when it holds fewer than the scope."""
        kept = set(self.names() if saved is None else saved)
        result: dict[str, dict[str, str]] = {}
        for name in sorted(self.metadata.tables):
            owner = self.owners.get(name)
            if name in kept and owner is not None:
                result[name] = {"status": BACKED_UP, "how": owner.how}
            elif name in self.shared:
                result[name] = {"status": SHARED, "reason": self.shared[name]}
            elif name in self.left_out:
                result[name] = {"status": LEFT_OUT, "reason": self.left_out[name]}
            elif owner is not None:
                result[name] = {"status": LEFT_OUT, "reason": "not in this kind of backup "
                                "(the web app's format holds only tables with the tenant "
                                "column)"}
            elif name in CONSOLE_TABLES:
                result[name] = {"status": CONSOLE, "reason": "the console's own bookkeeping"}
            else:
                result[name] = {"status": TENANT, "reason": "the organizations table: the "
                                "organization's own row is kept with the backup"}
        return result

    def predicate(self, scope: TableScope, org_id: int) -> ColumnElement[bool]:
        """The WHERE clause that picks this organization's rows of one table."""
        table = self.metadata.tables[scope.name]
        ways: list[ColumnElement[bool]] = []
        if scope.tenant_column:
            column = table.c[scope.tenant_column]
            # A tenant id kept as text (roles.scope = '1'): PostgreSQL compares no text to a
            # number, so the id is given as text too.
            as_text = isinstance(column.type, String | Text)
            ways.append(column == (str(org_id) if as_text else org_id))
        if scope.path:
            ways.append(self._through(table, scope.path[0], self._scope_of_path(scope), org_id))
        for hop in scope.alternatives:
            ways.append(self._through(table, hop, self.owners[hop.parent_table], org_id))
        if scope.polymorphic:
            ways += self._polymorphic(table, scope.polymorphic, org_id)
        return ways[0] if len(ways) == 1 else or_(*ways)

    def _through(self, table: Table, hop: Hop, parent_scope: TableScope,
                 org_id: int) -> ColumnElement[bool]:
        parent = self.metadata.tables[hop.parent_table]
        parent_ids = select(parent.c[hop.parent_column]).where(
            self.predicate(parent_scope, org_id))
        return table.c[hop.column].in_(parent_ids)

    def _polymorphic(self, table: Table, poly: Polymorphic,
                     org_id: int) -> list[ColumnElement[bool]]:
        """type = value AND id IN (that parent's ids), per declared type; an id kept as text
        is compared with the parent's key as text."""
        id_column = table.c[poly.id_column]
        as_text = isinstance(id_column.type, String | Text)
        ways = []
        for value, parent_name in poly.types:
            parent = self.metadata.tables[parent_name]
            key = next(iter(parent.primary_key.columns))
            ids = select(KeyAsText(key) if as_text else key).where(
                self.predicate(self.owners[parent_name], org_id))
            ways.append(and_(table.c[poly.type_column] == value, id_column.in_(ids)))
        return ways

    def not_owned(self, scope: TableScope, org_id: int) -> ColumnElement[bool]:
        """Rows of the table that are not this organization's, rows of nobody included."""
        table = self.metadata.tables[scope.name]
        if scope.simple:
            column = table.c[scope.owner_columns[0]]
            return or_(column.is_(None), not_(self.predicate(scope, org_id)))
        # NOT (a OR b) is NULL, not true, where a NULL owner column makes a test NULL.
        return case((self.predicate(scope, org_id), 0), else_=1) == 1

    def orphaned(self, scope: TableScope) -> ColumnElement[bool] | None:
        """Rows that belong to no organization only because every parent they name is gone
        (a billing app deleted an invoice and left its mails behind): they are whoever's
        those parents are again, once a restore brings them back (restore.rows adopts them).
        A row with a tenant column set, with no parent named, or naming a parent that exists
        or a type the map does not know, is not one. None: the table has no parent to lose."""
        table = self.metadata.tables[scope.name]
        hops = [*scope.path[:1], *scope.alternatives]
        if not hops and scope.polymorphic is None:
            return None
        named: list[ColumnElement[bool]] = []
        lost: list[ColumnElement[bool]] = []
        for hop in hops:
            column = table.c[hop.column]
            parent = self.metadata.tables[hop.parent_table]
            named.append(column.is_not(None))
            lost.append(or_(column.is_(None),
                            ~exists().where(parent.c[hop.parent_column] == column)))
        if scope.polymorphic:
            lost.append(self._lost_polymorphic(table, scope.polymorphic, named))
        ways = [or_(*named), *lost]
        if scope.tenant_column:
            ways.insert(0, table.c[scope.tenant_column].is_(None))
        # CASE: a NULL type or owner makes a plain test NULL, and NOT NULL is not true.
        return case((and_(*ways), 1), else_=0) == 1

    def _lost_polymorphic(self, table: Table, poly: Polymorphic,
                          named: list[ColumnElement[bool]]) -> ColumnElement[bool]:
        """No pair named, or a known type whose parent row is not there."""
        kind, ident = table.c[poly.type_column], table.c[poly.id_column]
        as_text = isinstance(ident.type, String | Text)
        named.append(ident.is_not(None))
        gone = [and_(kind.is_(None), ident.is_(None))]
        for value, parent_name in poly.types:
            key = next(iter(self.metadata.tables[parent_name].primary_key.columns))
            gone.append(and_(kind == value,
                             ~exists().where((KeyAsText(key) if as_text else key) == ident)))
        return or_(*gone)

    def unowned(self, scope: TableScope) -> ColumnElement[bool]:
        """Rows of the table that belong to no organization (a NULL owner, or a NULL link
        to the parent that would own them)."""
        table = self.metadata.tables[scope.name]
        return and_(*[table.c[c].is_(None) for c in scope.owner_columns])

    def _scope_of_path(self, scope: TableScope) -> TableScope:
        """The parent's own scope (rebuilt from the path when the parent is not known)."""
        hop, rest = scope.path[0], scope.path[1:]
        if hop.parent_table in self.owners:
            return self.owners[hop.parent_table]
        if rest:
            return TableScope(hop.parent_table, None, rest, scope.root_column)
        return TableScope(hop.parent_table, scope.root_column)


BACKED_UP, SHARED, LEFT_OUT, CONSOLE, TENANT = (
    "backed up", "shared", "left out", "console", "organizations")
NARROWED = "not in this organization's auto_backup_tables"  # OrganizationScope.left_out


UNPLACED = ("no organization column and no foreign key path to one; declare it in the "
            "ownership map")
# The web framework's own tables (Laravel's): the application's, never a tenant's.
FRAMEWORK_TABLES = frozenset({"migrations", "failed_jobs", "jobs", "job_batches", "cache",
                              "cache_locks", "sessions", "password_resets",
                              "password_reset_tokens", "personal_access_tokens"})


def discover_scope(metadata: MetaData, mapping: SchemaMapping,
                   only: Iterable[str] | None = None) -> OrganizationScope:
    """Find the organization-owned tables in a reflected schema: reflection proposes, the
    mapping's declared ownership overrides (and is checked first: a wrong declaration is
    one UsageError, before anything is read).

    `only` is ``organizations.auto_backup_tables`` when set: it narrows the result to the
    named tables (a child keeps its path through parents that were left out).
    """
    ownership = mapping.ownership.over(implied_ownership(metadata, mapping))
    candidates = {name: t for name, t in metadata.tables.items()
                  if name not in CONSOLE_TABLES and name != mapping.tenant_table}
    declared = {d.table: d for d in ownership.declarations}
    console = sorted(set(declared) & CONSOLE_TABLES)
    if console:
        raise UsageError(f"The ownership map declares {console[0]}, one of the console's own "
                         "tables, which are never part of an organization's data; leave it "
                         "out of the map.")
    scopes: dict[str, TableScope] = {}
    for name, table in candidates.items():
        column = None if name in declared else _tenant_column(table, mapping)
        if column:
            scopes[name] = TableScope(name, column)
    scopes.update({d.table: _declared_scope(d) for d in declared.values() if d.owned})
    _reach_children(candidates, scopes, set(declared))
    check_declarations(ownership, metadata, mapping.tenant_table,
                       {n for n, s in scopes.items() if not s.declared})
    shared, left_out = _not_owned(metadata, mapping, candidates, scopes, declared)
    if only is not None:
        wanted = set(only)
        for name in list(scopes):
            if name not in wanted:
                left_out[name] = NARROWED
        kept = {name: s for name, s in scopes.items() if name in wanted}
    else:
        kept = scopes
    ordered = [kept[name] for name in fk_order(metadata, kept)]
    return OrganizationScope(ordered, metadata, left_out, shared, dict(scopes))


@dataclass(frozen=True)
class StrandedRows:
    """Rows of a reflected child table that its path does not reach (the path's column is
    empty) although another foreign key names an owned parent: in nobody's backup unless a
    declaration lists that parent too."""

    table: str
    rows: int
    path_column: str
    other_columns: tuple[str, ...]

    @property
    def sentence(self) -> str:
        others = " or ".join(self.other_columns)
        return (f"{self.rows} rows of {self.table} have no {self.path_column} but a {others} "
                f"and are in no backup; declare the parents of {self.table} to include them")


def stranded_rows(conn: Connection, scope: OrganizationScope) -> list[StrandedRows]:
    """Rows reflection's one path misses (a comment on a ticket where the path goes through
    its project): counted, so that they are said, never silently left out."""
    found = []
    for name, table_scope in sorted(scope.owners.items()):
        if table_scope.declared or not table_scope.path:
            continue
        table = scope.metadata.tables[name]
        path_column = table.c[table_scope.path[0].column]
        if not path_column.nullable:
            continue
        others = sorted({fk.parent.name for fk in table.foreign_keys
                         if fk.column.table.name in scope.owners
                         and fk.parent.name != path_column.name})
        if not others:
            continue
        query = select(func.count()).select_from(table).where(path_column.is_(None)).where(
            or_(*[table.c[c].is_not(None) for c in others]))
        count = int(conn.execute(query).scalar_one())
        if count:
            found.append(StrandedRows(name, count, path_column.name, tuple(others)))
    return found


def count_owned(conn: Connection, scope: OrganizationScope, table_scope: TableScope,
                org_id: int) -> int:
    """How many of the table's rows the organization owns."""
    table = scope.metadata.tables[table_scope.name]
    query = select(func.count()).select_from(table).where(scope.predicate(table_scope, org_id))
    return int(conn.execute(query).scalar_one())


def check_polymorphic_types(conn: Connection, scope: OrganizationScope) -> None:
    """Refuse, in one sentence, a polymorphic table whose rows hold a type the ownership map
    gives to no table: those rows would be in no organization's backup, silently."""
    for name, table_scope in sorted(scope.owners.items()):
        poly = table_scope.polymorphic
        if poly is None:
            continue
        table = scope.metadata.tables[name]
        kind = table.c[poly.type_column]
        query = (select(kind, func.count()).where(kind.is_not(None))
                 .where(kind.not_in([value for value, _ in poly.types]))
                 .group_by(kind).order_by(kind).limit(5))
        found = conn.execute(query).all()
        if found:
            shown = ", ".join(f"{value!r} ({count} rows)" for value, count in found)
            raise UsageError(f"Table {name} holds rows of a type the ownership map gives to no "
                             f"table: {shown}; map each type to its table, or declare {name} "
                             "left out.")


def implied_ownership(metadata: MetaData, mapping: SchemaMapping) -> Ownership:
    """What the login's mapping already says about two tables, unless the map declares them.

    A membership table means users are shared between tenants: a tenant column the users
    table still has is stale (the login ignores it), and backing users up by it put other
    tenants' users and their password hashes in the archive, and let a restore revert a
    shared user's password. Role tables scoped by tenant mean a role is its scope's.
    """
    implied = []
    if mapping.membership_table and mapping.users_table in metadata.tables:
        implied.append(Declaration(mapping.users_table, shared=True))
    roles = metadata.tables.get(mapping.roles_table)
    if mapping.role_assignments_table and roles is not None \
            and mapping.role_scope_column in roles.c:
        implied.append(Declaration(mapping.roles_table, column=mapping.role_scope_column))
    return Ownership(tuple(implied))


def _declared_scope(decl: Declaration) -> TableScope:
    """A declaration as a TableScope: its first parent is the path, the others alternatives."""
    hops = [Hop(p.column, p.parent_table, p.parent_column) for p in decl.parents]
    return TableScope(decl.table, decl.column, tuple(hops[:1]), None, tuple(hops[1:]),
                      decl.polymorphic, declared=True)


def _reach_children(candidates: dict[str, Table], scopes: dict[str, TableScope],
                    declared: set[str]) -> None:
    """Breadth first, so each undeclared child gets its shortest path to an owned table."""
    frontier = set(scopes)
    while frontier:
        reached: dict[str, TableScope] = {}
        for name in sorted(set(candidates) - set(scopes) - declared):
            for fk in sorted(candidates[name].foreign_keys, key=_ownership_rank):
                parent = fk.column.table.name
                if parent in frontier and parent != name:
                    hop = Hop(fk.parent.name, parent, fk.column.name)
                    parent_scope = scopes[parent]
                    if parent_scope.simple and not parent_scope.declared:
                        reached[name] = TableScope(
                            name, None, (hop, *parent_scope.path),
                            parent_scope.tenant_column or parent_scope.root_column)
                    else:  # the parent's own (declared) ways go on from there
                        reached[name] = TableScope(name, None, (hop,))
                    break
        scopes.update(reached)
        frontier = set(reached)


def _not_owned(metadata: MetaData, mapping: SchemaMapping, candidates: dict[str, Table],
               scopes: dict[str, TableScope], declared: dict[str, Declaration]
               ) -> tuple[dict[str, str], dict[str, str]]:
    """The tables no organization owns: shared (declared, the framework's, or reference data
    an owned table or the organizations table points at) or left out, with the reason."""
    referenced = {fk.column.table.name for name in [*scopes, mapping.tenant_table]
                  if name in metadata.tables for fk in metadata.tables[name].foreign_keys}
    shared: dict[str, str] = {}
    left_out: dict[str, str] = {}
    for name in sorted(set(candidates) - set(scopes)):
        decl = declared.get(name)
        if decl is not None and decl.shared and mapping.ownership.get(name) is None:
            shared[name] = (f"users belong to organizations through {mapping.membership_table}, "
                            "the mapping's membership table")
        elif decl is not None and decl.shared:
            shared[name] = "declared shared"
        elif decl is not None and decl.left_out:
            left_out[name] = decl.left_out
        elif name in FRAMEWORK_TABLES:
            shared[name] = "the web framework's own table"
        elif name in referenced:
            shared[name] = "reference data the organization's rows point at"
        else:
            left_out[name] = UNPLACED
    return shared, left_out


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
