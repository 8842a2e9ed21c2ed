"""Restoring an organization from a backup: what the window, the command line and the tests call.

Check an archive against the live database (:func:`check_restore`: changes nothing, returns a
:class:`RestorePlan` with its preview), then restore it (:func:`apply_restore`: a restore
point, then one transaction, all or nothing). docs/restore.md explains it for support staff.

The modules read in the order the work happens, and each imports only the ones below it
(a layer may use any layer under it; modules on one line do not import each other):

    flow                    check → restore point → transaction; restore points
    check | transaction     the archive check and its preview | the one transaction
    rows | inserters | access
                            every row of the archive, proved to fit | the bulk-insert
                            strategies (executemany, INSERTs, LOAD DATA, COPY) | the
                            restorer's own admin rights, kept through the restore
    dialects | live | privileges
                            per-dialect session settings | queries about the live
                            organization, shared by check and transaction | the users' rights
    plan | hooks            the plan and result types, errors | where tests watch the transaction
    values                  archive values converted for live columns

Callers import from this package, not from its modules; only tests of the check's, the
plan's and the values' own functions (restore_order, KeySet, column_converter) reach inside.
"""

from desktop_backup.restore.flow import (
    apply_restore,
    check_restore,
    list_restore_points,
    restore_point_path,
)
from desktop_backup.restore.hooks import RestoreHooks
from desktop_backup.restore.plan import (
    CHANGE_WORDS,
    NOTHING_WOULD_CHANGE,
    RESTORE_POINTS_DIR,
    Changes,
    RestoreFailed,
    RestorePlan,
    RestoreRefused,
    RestoreResult,
    TablePreview,
    preview_text,
)

__all__ = [
    "CHANGE_WORDS", "NOTHING_WOULD_CHANGE", "RESTORE_POINTS_DIR", "Changes", "RestoreFailed",
    "RestoreHooks", "RestorePlan", "RestoreRefused", "RestoreResult", "TablePreview",
    "apply_restore", "check_restore", "list_restore_points", "preview_text",
    "restore_point_path",
]
