"""The declared ownership map: which tables belong to an organization, and how.

Reflection (:mod:`desktop_backup.tenancy`) proposes who owns each table from the tenant
column and the foreign keys; a schema it cannot read (a tenant column under another name
and without a foreign key, ``(owner_type, owner_id)`` pairs, addresses owned either way,
a users table whose legacy tenant column lies) is described here, and declarations override
the proposal. They come from settings.json (key ``"ownership"``) or a JSON file a support
engineer hands over (``--ownership FILE``), one entry per table::

    {"roles":      {"column": "scope"},
     "addresses":  {"column": "company_id", "parents": ["customer_id -> customers.id"]},
     "email_logs": {"polymorphic": {"type": "mailable_type", "id": "mailable_id",
                                    "types": {"invoice": "invoices", "payment": "payments"}}},
     "users":      "shared",
     "audits":     {"left_out": "kept by the web app's own log rotation"}}

Parents are one step each; the parent's own ownership goes on from there, and several
parents are alternatives (a row is the organization's when any of them is).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData

from desktop_backup.errors import UsageError

SHARED = "shared"
_LINK = re.compile(r"^\s*([^\s.>-][^\s>]*)\s*->\s*([^\s.]+)\.([^\s.]+)\s*$")


@dataclass(frozen=True)
class Link:
    """One declared step from a child row to the parent row that owns it."""

    column: str
    parent_table: str
    parent_column: str

    @classmethod
    def parse(cls, table: str, text: Any) -> Link:
        match = _LINK.match(text) if isinstance(text, str) else None
        if not match:
            raise UsageError(f"The ownership of {table} names the parent {text!r}; write it "
                             "as \"column -> parent_table.column\".")
        return cls(*match.groups())

    def __str__(self) -> str:
        return f"{self.column} -> {self.parent_table}.{self.parent_column}"


@dataclass(frozen=True)
class Polymorphic:
    """An (owner type, owner id) pair: the type's value names the parent table, the id is
    that table's primary key (stored as a number or as text)."""

    type_column: str
    id_column: str
    types: tuple[tuple[str, str], ...]  # (type value, parent table), in the declared order

    @classmethod
    def from_dict(cls, table: str, data: Any) -> Polymorphic:
        if not isinstance(data, dict) or set(data) != {"type", "id", "types"}:
            raise UsageError(f"The polymorphic ownership of {table} needs exactly \"type\", "
                             "\"id\" and \"types\" (type value -> parent table).")
        types = data["types"]
        if not isinstance(types, dict) or not types or not all(
                isinstance(k, str) and isinstance(v, str) and v for k, v in types.items()):
            raise UsageError(f"The polymorphic ownership of {table} gives no parent table for "
                             "its types; map each type value to a table name.")
        if not isinstance(data["type"], str) or not isinstance(data["id"], str):
            raise UsageError(f"The polymorphic ownership of {table} names its type and id "
                             "columns with something other than a column name.")
        return cls(data["type"], data["id"], tuple(types.items()))

    def to_dict(self) -> dict:
        return {"type": self.type_column, "id": self.id_column, "types": dict(self.types)}


@dataclass(frozen=True)
class Declaration:
    """How one table's rows belong to an organization, as a person declared it."""

    table: str
    column: str | None = None  # the table's own tenant column (with or without a foreign key)
    parents: tuple[Link, ...] = ()  # alternative parents, each owned in its own right
    polymorphic: Polymorphic | None = None
    shared: bool = False  # the same rows for every organization: never backed up or written
    left_out: str | None = None  # not backed up, for this reason

    @property
    def owned(self) -> bool:
        return bool(self.column or self.parents or self.polymorphic)

    @classmethod
    def from_value(cls, table: str, value: Any) -> Declaration:
        if value == SHARED:
            return cls(table, shared=True)
        if not isinstance(value, dict) or not value:
            raise UsageError(f"The ownership of {table} must be \"shared\" or an object with "
                             "\"column\", \"parents\", \"polymorphic\" or \"left_out\".")
        unknown = sorted(set(value) - {"column", "parents", "polymorphic", "left_out"})
        if unknown:
            raise UsageError(f"The ownership of {table} has unknown keys: {', '.join(unknown)}.")
        if "left_out" in value:
            if len(value) > 1 or not isinstance(value["left_out"], str) \
                    or not value["left_out"].strip():
                raise UsageError(f"The ownership of {table} leaves it out: give only the "
                                 "reason, as text.")
            return cls(table, left_out=value["left_out"].strip())
        column = value.get("column")
        if column is not None and (not isinstance(column, str) or not column):
            raise UsageError(f"The ownership of {table} names its tenant column with "
                             "something other than a column name.")
        parents = value.get("parents", [])
        if not isinstance(parents, list):
            raise UsageError(f"The ownership of {table} lists its parents as something other "
                             "than a list.")
        poly = value.get("polymorphic")
        return cls(table, column, tuple(Link.parse(table, p) for p in parents),
                   Polymorphic.from_dict(table, poly) if poly is not None else None)

    def to_value(self) -> Any:
        if self.shared:
            return SHARED
        if self.left_out:
            return {"left_out": self.left_out}
        value: dict[str, Any] = {}
        if self.column:
            value["column"] = self.column
        if self.parents:
            value["parents"] = [str(p) for p in self.parents]
        if self.polymorphic:
            value["polymorphic"] = self.polymorphic.to_dict()
        return value


@dataclass(frozen=True)
class Ownership:
    """Every declaration, by table; empty for the billing database (reflection is enough)."""

    declarations: tuple[Declaration, ...] = field(default=())

    def get(self, table: str) -> Declaration | None:
        return next((d for d in self.declarations if d.table == table), None)

    def tables(self) -> list[str]:
        return [d.table for d in self.declarations]

    def over(self, base: Ownership) -> Ownership:
        """These declarations, and `base`'s for the tables these do not mention (a file
        handed over on the command line wins over the settings)."""
        mine = set(self.tables())
        return Ownership(tuple(d for d in base.declarations if d.table not in mine)
                         + self.declarations)

    @classmethod
    def from_dict(cls, data: Any) -> Ownership:
        if not isinstance(data, dict):
            raise UsageError("The ownership map must be a JSON object of table name -> "
                             "declaration.")
        return cls(tuple(Declaration.from_value(str(t), v) for t, v in data.items()))

    def to_dict(self) -> dict:
        return {d.table: d.to_value() for d in self.declarations}


def load_ownership_file(path: Path) -> Ownership:
    """The ownership map a support engineer handed over, or one sentence saying why not."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"The ownership file {path} cannot be read ({exc.strerror}).") from exc
    except ValueError as exc:
        raise UsageError(f"The ownership file {path} is not JSON ({exc}).") from exc
    if isinstance(data, dict) and set(data) == {"ownership"}:
        data = data["ownership"]  # a settings.json excerpt works too
    return Ownership.from_dict(data)


# --- checked against the live schema ----------------------------------------------------------

def check_declarations(ownership: Ownership, metadata: MetaData, tenant_table: str,
                       owned_by_reflection: set[str]) -> None:
    """Refuse, in one sentence, a declaration that names a missing table or column, a parent
    path that never reaches the tenant, a cycle, or a polymorphic type without a table.

    `owned_by_reflection`: the tables reflection places that no declaration mentions (a
    declared parent may be one of them).
    """
    for decl in ownership.declarations:
        _check_names(decl, metadata)
    if tenant_table in ownership.tables():
        raise UsageError(f"The ownership map declares {tenant_table}, the organizations table "
                         "itself; leave it out of the map.")
    _check_reaches(ownership, owned_by_reflection)


def _check_names(decl: Declaration, metadata: MetaData) -> None:
    table = metadata.tables.get(decl.table)
    if table is None:
        raise UsageError(f"The ownership map names the table {decl.table}, which the database "
                         "does not have.")
    columns = [decl.column] if decl.column else []
    columns += [p.column for p in decl.parents]
    if decl.polymorphic:
        columns += [decl.polymorphic.type_column, decl.polymorphic.id_column]
    for column in columns:
        if column not in table.c:
            raise UsageError(f"The ownership map names the column {decl.table}.{column}, which "
                             "the database does not have.")
    for link in decl.parents:
        parent = metadata.tables.get(link.parent_table)
        if parent is None or link.parent_column not in parent.c:
            raise UsageError(f"The ownership of {decl.table} goes through "
                             f"{link.parent_table}.{link.parent_column}, which the database "
                             "does not have.")
    for value, parent_name in decl.polymorphic.types if decl.polymorphic else ():
        parent = metadata.tables.get(parent_name)
        if parent is None:
            raise UsageError(f"The polymorphic type {value!r} of {decl.table} names the table "
                             f"{parent_name}, which the database does not have.")
        if len(parent.primary_key.columns) != 1:
            raise UsageError(f"The polymorphic type {value!r} of {decl.table} points at "
                             f"{parent_name}, which has no single-column primary key to match "
                             f"{decl.polymorphic.id_column} with.")


def parent_tables(decl: Declaration) -> list[str]:
    """The tables a declared row's ownership goes through."""
    names = [p.parent_table for p in decl.parents]
    names += [t for _, t in decl.polymorphic.types] if decl.polymorphic else []
    return list(dict.fromkeys(names))


def _check_reaches(ownership: Ownership, owned_by_reflection: set[str]) -> None:
    """Every declared owned table reaches a table with the tenant column, without a cycle."""
    declared = {d.table: d for d in ownership.declarations}
    state: dict[str, str] = {}  # "open" while being followed, then "done"

    def follow(name: str, trail: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "open":
            loop = trail[trail.index(name):] + [name]
            raise UsageError("The ownership map goes round in a circle ("
                             + " -> ".join(loop) + "); one of them must own its rows "
                             "directly.")
        state[name] = "open"
        decl = declared[name]
        for parent in parent_tables(decl):
            if parent in declared and declared[parent].owned:
                follow(parent, [*trail, name])
            elif parent not in owned_by_reflection:
                why = ("is shared" if parent in declared and declared[parent].shared else
                       "is left out" if parent in declared else
                       "belongs to no organization")
                raise UsageError(f"The ownership of {name} goes through {parent}, which {why}; "
                                 "that path does not reach an organization.")
        state[name] = "done"

    for decl in ownership.declarations:
        if decl.owned:
            follow(decl.table, [])
