"""The words a restore is described in, from the check to the result: shared by every step.

The check fills a :class:`RestorePlan` (with a :class:`TablePlan` per table, whose
:class:`KeySet` holds the backup's keys compactly) and the flow turns it into a
:class:`RestoreResult`; the window and the command line read both. The errors a restore
raises, and the one way it answers a cancel, are here too.
"""

from __future__ import annotations

import operator
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from sqlalchemy import ForeignKeyConstraint, Table

from desktop_backup.archive import ArchiveError, Manifest, TableEntry
from desktop_backup.errors import DesktopBackupError
from desktop_backup.organizations import Organization
from desktop_backup.restore.values import Key, ValueProblem, norm
from desktop_backup.tenancy import OrganizationScope, TableScope
from desktop_backup.work import Actor, CancelFlag, Cancelled

RESTORE_POINTS_DIR = "restore-points"

CHANGE_WORDS = ("Brought back", "Changed", "Unchanged", "Removed")
NOTHING_WOULD_CHANGE = "Nothing would change"
# Why a lost organization's restore makes no restore point (RestorePlan.nothing_to_save).
NO_RESTORE_POINT = "there is nothing to save first (no restore point is made)"


class RestoreRefused(DesktopBackupError):
    """The restore was refused before anything changed; the message says why."""


class RestoreFailed(DesktopBackupError):
    """The restore started and failed; its transaction was rolled back, nothing changed."""


def stop_if_cancelled(cancel: CancelFlag | None) -> None:
    """Between batches: a cancel stops the restore before anything is kept."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("The restore was cancelled; nothing was changed.")


@dataclass(frozen=True)
class Changes:
    """What a restore does to the organization's rows, in the four words both the window and
    the command line use (CHANGE_WORDS)."""

    brought_back: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0

    @property
    def any(self) -> bool:
        return bool(self.brought_back or self.changed or self.removed)

    def counts(self) -> tuple[int, int, int, int]:
        return (self.brought_back, self.changed, self.unchanged, self.removed)

    def sentence(self) -> str:
        """'Brought back 30 rows, Changed 5, Unchanged 63,091, Removed 3.'"""
        parts = [f"{word} {n:,}" for word, n in zip(CHANGE_WORDS, self.counts(), strict=True)]
        noun = "row" if self.brought_back == 1 else "rows"
        return f"{parts[0]} {noun}, " + ", ".join(parts[1:]) + "."

    def to_dict(self) -> dict:
        return {"brought_back": self.brought_back, "changed": self.changed,
                "unchanged": self.unchanged, "removed": self.removed}


@dataclass(frozen=True)
class TablePreview:
    """What a restore does to one table, counted by primary key and compared value by value.

    `to_delete`: rows there now that the backup does not have (Removed);
    `to_insert`: rows of the backup that are not there now (Brought back);
    `to_update`: rows in both whose values differ, which get the backup's (Changed);
    `unchanged`: rows in both that are already exactly the backup's (Unchanged);
    `left_out`: rows of the backup not put back (links of users deleted since, see
    LeftOut), counted in none of the four.
    A table without a primary key has every row deleted and the backup's inserted.
    """

    table: str
    rows_now: int
    rows_in_backup: int
    to_delete: int
    to_insert: int
    to_update: int
    strategy: str  # "merge": rows outside the restore refer to the table; else "replace"
    unchanged: int = 0
    left_out: int = 0  # rows of the backup not put back (TablePlan.leave_out): in no count above

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class RestorePlan:
    """The verdict on restoring one archive into one organization, and its preview.

    `ok` False means the restore is refused and `message` says why in one sentence; nothing
    was changed. `dropped` lists tables and columns (``table.column``) the backup has and the
    database no longer has: they are refused unless `accept_dropped` was given.
    """

    archive_path: Path
    ok: bool
    message: str
    kind: str = ""  # "native" or "seed" (the web app's layout)
    organization: dict = field(default_factory=dict)  # the archive's: id, code, name
    created_at: str = ""
    weekday: str = ""
    trigger: str = ""
    tables: list[TablePreview] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    added_columns: list[str] = field(default_factory=list)  # take their defaults
    skipped: list[str] = field(default_factory=list)  # in the archive, never restored
    warnings: list[str] = field(default_factory=list)
    accept_dropped: bool = False
    organization_id: int | None = None  # the target organization the plan was made for
    # authenticity.AUTHENTIC, CHANGED, FOREIGN: whether the file is as this console wrote it
    authenticity: str = ""
    authenticity_message: str = ""
    made_by: str = ""  # "by Desktop Backup", "by the web app", … (archive.made_by)
    backup_id: str = ""  # the backup's identity (its manifest's id; "" in older backups)
    partial: str = ""  # "partial: 1 of 21 tables" when the backup left tables out
    # The organization's tables the backup does not hold: a restore leaves them as they are.
    untouched: list[str] = field(default_factory=list)
    # what the apply needs from the check (None when refused): not shown, not compared
    checked: Checked | None = field(default=None, repr=False, compare=False)
    # Refused only because the backup is encrypted for a key this workstation does not hold:
    # the window then asks for the recovery sheet instead of sending the user Back.
    key_missing: bool = False

    @property
    def rows_in_backup(self) -> int:
        return sum(t.rows_in_backup for t in self.tables)

    @property
    def changes(self) -> Changes:
        """The four counts of the whole restore, as the window and the CLI say them."""
        return Changes(sum(t.to_insert for t in self.tables),
                       sum(t.to_update for t in self.tables),
                       sum(t.unchanged for t in self.tables),
                       sum(t.to_delete for t in self.tables))

    @property
    def changes_nothing(self) -> bool:
        """Restoring would leave every row as it is: the restore stops there."""
        return self.ok and not self.changes.any

    @property
    def nothing_to_save(self) -> bool:
        """The organization holds no rows now in any table the restore writes (it was lost
        or emptied): a restore point would hold nothing, and undoing the restore would only
        delete what it brought back, so none is made. The transaction proves the tables are
        still empty before it writes (transaction.run_restore's `expect_empty`)."""
        return self.ok and not self.changes_nothing and all(
            t.rows_now == 0 for t in self.tables)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "message": self.message, "archive": str(self.archive_path),
                "kind": self.kind, "organization": self.organization,
                "created_at": self.created_at, "weekday": self.weekday,
                "trigger": self.trigger, "preview": [t.to_dict() for t in self.tables],
                "rows_in_backup": self.rows_in_backup, "changes": self.changes.to_dict(),
                "changes_nothing": self.changes_nothing,
                "nothing_to_save": self.nothing_to_save, "partial": self.partial,
                "untouched": self.untouched, "dropped": self.dropped,
                "added_columns": self.added_columns, "skipped": self.skipped,
                "warnings": self.warnings, "authenticity": self.authenticity,
                "authenticity_message": self.authenticity_message}


@dataclass
class Checked:
    """What the apply needs from the check, and how to tell that nothing changed since."""

    plans: list[TablePlan]
    scope: OrganizationScope
    manifest: Manifest
    file_sha256: str
    schema: str
    restorer: Actor | None = None  # whose rights the users' rows were judged by


@dataclass
class RestoreResult:
    """What a restore did, for the window, the command line (--json) and the audit."""

    ok: bool
    message: str
    archive: Path
    restore_point: Path | None
    tables: dict[str, int] = field(default_factory=dict)  # rows restored per table
    rows: int = 0
    deleted: int = 0  # rows removed because the backup does not have them
    duration_s: float = 0.0
    # How the backup's rows were written: new, rewritten because they differed, or left
    # alone because the database already held them exactly.
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def changes(self) -> Changes:
        return Changes(self.inserted, self.updated, self.unchanged, self.deleted)

    @property
    def changed_nothing(self) -> bool:
        """The restore stopped because nothing would change (no restore point was made)."""
        return self.ok and self.restore_point is None and not self.changes.any

    @property
    def nothing_to_save(self) -> bool:
        """The restore wrote rows but made no restore point: the organization had no data
        here before (RestorePlan.nothing_to_save), so there is nothing to undo it to."""
        return self.ok and self.restore_point is None and self.changes.any

    def to_dict(self) -> dict:
        return {"ok": self.ok, "message": self.message, "archive": str(self.archive),
                "restore_point": str(self.restore_point) if self.restore_point else None,
                "nothing_to_save": self.nothing_to_save,
                "tables": self.tables, "rows": self.rows, "deleted": self.deleted,
                "inserted": self.inserted, "updated": self.updated,
                "unchanged": self.unchanged, "changes": self.changes.to_dict(),
                "duration_s": round(self.duration_s, 3)}


# --- the plan for one table ------------------------------------------------------------------

@dataclass
class LeftOut:
    """Rows of the backup a restore leaves out: those whose `columns` hold one of `values`.

    Either the shared users they link to the organization were deleted since the backup
    (`shared`: a restore of one organization never writes a shared table, so it cannot bring
    them back; restore.rows.user_links), or they depend on rows of the backup that are left
    out themselves (so nothing dangles).
    The check decides once and the transaction applies the same rules, so both agree on
    which rows are written whatever they read."""

    columns: tuple[str, ...]
    values: set[Key]
    parent: str  # the table the values are rows of
    shared: bool
    at: tuple[int, ...] = ()  # where `columns` are in a decoded row (TablePlan.columns)


@dataclass
class TablePlan:
    """How one archive table goes back into its live table."""

    name: str
    entry: TableEntry
    scope: TableScope
    table: Table
    columns: list[str]  # restored columns, in the order values are bound
    positions: list[int]  # where each comes from in an archive row
    key: list[str]  # the live primary key (empty: the table has none)
    # per column, the archive's values of a batch as the values to bind (column_converter)
    column_converters: list = field(default_factory=list)
    strategy: str = "replace"  # or "merge" (rows outside the restore refer to it): see
    # choose_strategies
    deferred: list[str] = field(default_factory=list)  # FK columns written after all rows
    backup_keys: KeySet = field(default_factory=lambda: KeySet(1))
    rows_now: int = 0
    to_delete: int = 0
    to_insert: int = 0
    to_update: int = 0
    # What the backup's rows refer to outside the backup (shared rows, another organization's),
    # found in the database by the check, per foreign key; None once there were too many to
    # keep. The restore locks them before writing without the database's own checks.
    outside: dict[ForeignKeyConstraint, set[Key]] | None = field(default_factory=dict)
    leave_out: list[LeftOut] = field(default_factory=list)  # rules, decided by the check
    left_out: int = 0  # how many of the backup's rows they leave out
    # Live rows of nobody whose every parent is gone and comes back with the backup (a mail
    # of a deleted invoice the backup restores): keys as the database has them. The check
    # adopts them (restore.rows), so the transaction rewrites them or removes them with the
    # organization's own rows instead of calling them another organization's.
    adopted: list[Key] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.backup_keys = KeySet(len(self.key))

    @property
    def rows_restored(self) -> int:
        """The backup's rows the restore writes: all but those it leaves out."""
        return self.entry.rows - self.left_out

    def leave_out_rule(self, columns: tuple[str, ...], parent: str, shared: bool) -> LeftOut:
        """The rule for rows whose `columns` refer to rows of `parent`, made on first use."""
        for rule in self.leave_out:
            if (rule.columns, rule.parent, rule.shared) == (columns, parent, shared):
                return rule
        rule = LeftOut(columns, set(), parent, shared,
                       tuple(self.columns.index(c) for c in columns))
        self.leave_out.append(rule)
        return rule

    def leaves_out(self, row: tuple) -> bool:
        """Whether the restore leaves this decoded row out (see LeftOut)."""
        return any(norm(row[i] for i in rule.at) in rule.values for rule in self.leave_out)

    def restored_rows(self, rows: list[tuple]) -> list[tuple]:
        """A decoded batch without the rows the restore leaves out."""
        if not self.leave_out:
            return rows
        return [row for row in rows if not self.leaves_out(row)]

    @property
    def keyed(self) -> bool:
        """Rows are matched by primary key (the table has one, and the backup has it)."""
        return bool(self.key) and all(c in self.columns for c in self.key)

    @property
    def key_index(self) -> list[int]:
        return [self.columns.index(c) for c in self.key]

    def decode_columns(self, raw: list[list], judged: bool = False) -> list[Sequence]:
        """A batch of archive rows (all of the entry's width) as converted columns, in
        `columns` order: one pass per column, most of them without a Python call per value.

        ``judged=True`` skips the columns' size checks (values.ColumnFit), for the
        transaction's second reading only: the check judged these very bytes, and
        iter_batches proves it before the commit (a table whose bytes are not the SHA-256
        the check verified raises, and the transaction rolls back). The conversion itself,
        which makes the values to bind, always runs."""
        if not raw:
            return [() for _ in self.columns]
        by_position = list(zip(*raw, strict=True))
        out = []
        for name, position, convert in zip(self.columns, self.positions,
                                           self.column_converters, strict=True):
            try:
                out.append(convert(by_position[position], judged))
            except ValueProblem as exc:
                raise ArchiveError(f"Table {self.name}, column {name}: {exc}; the backup "
                                   "cannot be used.") from None
        return out

    def decode_batch(self, raw: list[list], judged: bool = False) -> list[tuple]:
        """A batch of archive rows as the tuples to bind, in `columns` order."""
        return list(zip(*self.decode_columns(raw, judged), strict=True))


# Keys kept as sets during the check, all tables together: ~6 MB. 1 << 17 took a 1.2M-row
# PostgreSQL check to 149.5 MB of peak RSS; this one to 144 MB, its time within 4 %.
CACHED_KEYS = 1 << 16


class KeySet:
    """The primary keys of one table in the backup, without a Python object per key where
    it can: a single whole-number key (nearly every table) is kept in a sorted array of
    8-byte integers, so a million keys take 8 MB rather than a hundred. Other keys (text,
    several columns) are a set of normalized tuples.

    Keys are added batch by batch as the archive is read; a repeated key is refused. Whether
    the backup lists its rows in key order (our own archives do) is remembered: the restore
    then reads the live rows range by range.
    """

    def __init__(self, width: int) -> None:
        self.ints: array | None = array("q") if width == 1 else None
        self.tuples: set[Key] = set()
        self.ordered = width == 1
        self.sorted = True  # `ints` is sorted (always true once sealed)
        self._lookup: set[int] | None = None  # while checking references: `ints` as a set

    def __len__(self) -> int:
        return len(self.ints) if self.ints is not None else len(self.tuples)

    def add(self, table: str, key: list[str], columns: list[Sequence]) -> None:
        """One batch's `key` columns. Raises ArchiveError for a missing or repeated key."""
        if any(None in c for c in columns):
            raise ArchiveError(f"Table {table} in the backup has a row without its "
                               f"{', '.join(key)}; it is damaged.")
        if self.ints is not None:
            values = columns[0]
            if set(map(type, values)) <= {int}:
                try:
                    self._add_ints(values)
                    return
                except OverflowError:
                    pass  # beyond 64 bits: kept as tuples below
            self._to_tuples()
        for value in map(norm, zip(*columns, strict=True)):
            if value in self.tuples:
                raise self._twice(table, value)
            self.tuples.add(value)

    def _add_ints(self, values: Sequence[int]) -> None:
        ints = self.ints
        assert ints is not None
        if not values:
            return
        if self.ordered and not ((not ints or ints[-1] < values[0])
                                 and all(map(operator.lt, values, islice(values, 1, None)))):
            self.ordered = False
        start = len(ints)
        try:
            ints.extend(values)
        except OverflowError:
            del ints[start:]  # what went in before the value too big for 64 bits
            raise
        if not self.ordered:
            self.sorted = False

    def _to_tuples(self) -> None:
        if self.ints is not None:
            self.tuples = {(v,) for v in self.ints}
            repeated = len(self.tuples) != len(self.ints)
            self.ints, self.ordered, self.sorted = None, False, True
            if repeated:
                raise ArchiveError("A table in the backup holds a row twice; it is damaged.")

    @staticmethod
    def _twice(table: str, key: Key) -> ArchiveError:
        return ArchiveError(f"Table {table} in the backup holds the row "
                            f"{', '.join(map(str, key))} twice; it is damaged.")

    def seal(self, table: str) -> None:
        """After the table's last batch: sort what came out of order, refuse repeats."""
        ints = self.ints
        if ints is None or self.sorted:
            return
        ordered = array("q", sorted(ints))
        if any(map(operator.eq, ordered, islice(ordered, 1, None))):
            twice = next(a for a, b in zip(ordered, ordered[1:], strict=False) if a == b)
            raise self._twice(table, (twice,))
        self.ints = ordered
        self.sorted = True

    def missing(self, keys: Iterable[Key]) -> set[Key]:
        """The normalized keys that are not in the backup."""
        if self.ints is None:
            return set(keys).difference(self.tuples)
        keys = set(keys)
        whole = {k for k in keys if type(k[0]) is int}
        found = self.present_ints(k[0] for k in whole)
        return {k for k in keys if k not in whole or k[0] not in found}

    def present_ints(self, values: Iterable[int]) -> set[int]:
        """Which of these whole numbers are keys in the backup (single-column keys only)."""
        ints = self.ints
        assert ints is not None and self.sorted
        if self._lookup is not None:
            return self._lookup.intersection(values)
        wanted = sorted(set(values))
        if not wanted or not ints:
            return set()
        lo, hi = bisect_left(ints, wanted[0]), bisect_right(ints, wanted[-1])
        if hi - lo <= 4 * len(wanted) + 1024:
            return set(wanted).intersection(ints[lo:hi])
        found = set()
        for value in wanted:
            at = bisect_left(ints, value, lo, hi)
            if at < hi and ints[at] == value:
                found.add(value)
        return found

    def discard(self, keys: list[Key]) -> None:
        """Forget the keys of rows the restore leaves out (TablePlan.leave_out): the live rows
        with those keys are then not the backup's, and go like any other it lacks."""
        if not keys:
            return
        if self.ints is not None:
            drop = {k[0] for k in keys}
            self.ints = array("q", (v for v in self.ints if v not in drop))
        else:
            self.tuples.difference_update(map(norm, keys))
        self._lookup = None

    def cache(self, limit: int = CACHED_KEYS) -> bool:
        """Keep a set of a smaller table's keys while references to it are checked: the
        lookups are then in C. A set costs ~100 bytes a key (measured), so `limit` keys take
        ~6 MB; a bigger table is searched in its sorted array instead. True when cached
        (the caller bounds how many are kept at once: restore.rows.RowChecker)."""
        if self.ints is not None and self.sorted and len(self.ints) <= limit:
            self._lookup = set(self.ints)
        return self._lookup is not None

    def release(self) -> None:
        self._lookup = None

    def contains(self, key: Key) -> bool:
        if self.ints is None:
            return key in self.tuples
        if type(key[0]) is not int:
            return False
        at = bisect_left(self.ints, key[0])
        return at < len(self.ints) and self.ints[at] == key[0]


# --- the plan in words -----------------------------------------------------------------------

def preview_text(plan: RestorePlan, org: Organization) -> str:
    """The preview as the command line prints it before asking: the window's words."""
    headers = ("table", "now", "backup", *CHANGE_WORDS)
    body = [(t.table, t.rows_now, t.rows_in_backup, t.to_insert, t.to_update, t.unchanged,
             t.to_delete) for t in plan.tables]
    body.append(("all tables", *(sum(row[i] for row in body) for i in range(1, 7))))
    body = [(row[0], *(f"{n:,}" for n in row[1:])) for row in body]  # 1,204,331 rows
    # Every column as wide as its widest value: a million rows must not run into the next.
    widths = [max(len(str(row[i])) for row in [headers, *body]) for i in range(7)]
    lines = [plan.message]
    if plan.changes_nothing:
        lines.append(f"{NOTHING_WOULD_CHANGE}: {org.name}'s data is already exactly as in "
                     "this backup.")
    else:
        lines.append(f"What the restore changes in {org.label}: {plan.changes.sentence()}")
    for row in [headers, *body]:
        cells = [f"{row[0]:<{widths[0]}}"] + [f"{v:>{w}}" for v, w in zip(row[1:], widths[1:],
                                                                           strict=True)]
        lines.append("  " + "  ".join(cells))
    if plan.untouched:
        lines.append(f"Left untouched, because the backup does not hold them: "
                     f"{', '.join(plan.untouched)}.")
    if plan.dropped:
        lines.append(f"Not restored, because the database no longer has them: "
                     f"{', '.join(plan.dropped)}.")
    if plan.added_columns:
        lines.append(f"New since the backup, given their default values: "
                     f"{', '.join(plan.added_columns)}.")
    lines += [f"Note: {w}" for w in plan.warnings]
    if plan.authenticity_message:
        lines.append(f"Origin: {plan.authenticity_message}")
    if plan.nothing_to_save:
        lines.append(f"Other organizations and shared tables are not touched. {org.name} has "
                     f"no data here now, so {NO_RESTORE_POINT}.")
    elif not plan.changes_nothing:
        lines.append("Other organizations and shared tables are not touched. Before anything "
                     "changes, the current data is saved as a restore point.")
    return "\n".join(lines)
