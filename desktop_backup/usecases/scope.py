"""The ownership map a backup would use, table by table: what `desktop-backup scope` prints
and the settings' Scope page shows, so a support engineer reviews it before the first
backup of a schema nobody here wrote."""

from __future__ import annotations

from dataclasses import dataclass, field

from desktop_backup.db import console_schema, reflect
from desktop_backup.export import read_snapshot
from desktop_backup.organizations import Organization, find_organization
from desktop_backup.tenancy import (
    BACKED_UP,
    LEFT_OUT,
    check_polymorphic_types,
    count_owned,
    discover_scope,
    stranded_rows,
)
from desktop_backup.work import Site


@dataclass(frozen=True)
class ScopeLine:
    """One table: its status, how ownership is reached (or why it is not), and with an
    organization, how many of its rows that organization owns."""

    table: str
    status: str  # tenancy.BACKED_UP, SHARED, LEFT_OUT, CONSOLE or TENANT
    how: str
    rows: int | None = None

    def to_dict(self) -> dict:
        return {"table": self.table, "status": self.status, "how": self.how,
                **({"rows": self.rows} if self.rows is not None else {})}


@dataclass
class ScopeReport:
    """Every table of the database, as a backup would treat it."""

    lines: list[ScopeLine]
    organization: Organization | None = None
    narrowed: list[str] = field(default_factory=list)
    stranded: list[str] = field(default_factory=list)  # rows no way reaches, as sentences
    console_schema: str | None = None  # where the console's own tables are, when not here

    @property
    def left_out(self) -> list[ScopeLine]:
        return [line for line in self.lines if line.status == LEFT_OUT]

    @property
    def console_apart(self) -> str:
        """The sentence that says where the console's tables are, when not in this list."""
        return (f"The console keeps its own tables apart, in '{self.console_schema}'."
                if self.console_schema else "")

    @property
    def backed_up(self) -> list[ScopeLine]:
        return [line for line in self.lines if line.status == BACKED_UP]


def ownership_report(site: Site, org_key: int | str | None = None) -> ScopeReport:
    """The map of the site's schema (reflection, overridden by the declared ownership; a
    wrong declaration raises its UsageError here); with `org_key`, that organization's row
    counts and its own narrowing."""
    with read_snapshot(site.engine) as conn:  # one instant, and a locked table is a sentence
        org = find_organization(conn, site.mapping, org_key) if org_key is not None else None
        scope = discover_scope(reflect(conn), site.mapping,
                               org.auto_backup_tables if org else None)
        check_polymorphic_types(conn, scope)
        stranded = [s.sentence for s in stranded_rows(conn, scope)]
        counts = {t.name: count_owned(conn, scope, t, org.id) for t in scope.tables} \
            if org else {}
    lines = [ScopeLine(name, record["status"], record.get("how") or record.get("reason", ""),
                       counts.get(name))
             for name, record in scope.table_map().items()]
    return ScopeReport(lines, org, sorted(n for n in scope.left_out
                                          if n not in scope.unplaced()), stranded,
                       console_schema(site.engine))
