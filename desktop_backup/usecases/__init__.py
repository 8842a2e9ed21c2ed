"""What the window and the command line ask of the core, as plain functions: one path for
both, so a login, an overview or a deleted file means the same wherever it was asked for.

Qt-free on purpose: each function here composes core calls (connect, log in, read the week
and the history, check, copy or delete a backup, change a setting, send copies off-site),
writes the audit line that says so (audit.py) and returns a dataclass, so it can be tested
without a display, run by the window on a worker thread (``TaskRunner``) and by cli.py in
line. No SQL is written here either; every statement lives in the core modules. The backup
itself is backup.run_backup and the restore desktop_backup.restore: both are called as they
are.

The rooms: session (connect, log in, act for an organization), overview, on_disk (what
each file holds now), files (check, copy, delete), sources (what the restore wizard offers),
settings, offsite_copies, encryption. Their public names are importable from here.
"""

from __future__ import annotations

from desktop_backup.encryption_setting import SHEET_NOT_CONFIRMED
from desktop_backup.usecases.encryption import (
    EncryptionOn,
    EncryptionStatus,
    change_refused,
    confirm_sheet,
    encryption_status,
    export_key,
    import_key,
    new_recovery_sheet,
    set_extra_recipients,
    turn_encryption_off,
    turn_encryption_on,
    unlock_backup,
)
from desktop_backup.usecases.files import (
    copy_name,
    database_key,
    delete_backup,
    save_copy,
    verify,
    written_as,
)
from desktop_backup.usecases.offsite_copies import (
    fetch_offsite,
    push_offsite,
    send_offsite,
    set_monthly_copies,
    set_offsite_remote,
    turn_offsite_off,
)
from desktop_backup.usecases.on_disk import (
    FileNow,
    files_now,
    history_notes,
)
from desktop_backup.usecases.overview import (
    Overview,
    load_overview,
)
from desktop_backup.usecases.scope import ScopeLine, ScopeReport, ownership_report
from desktop_backup.usecases.session import (
    SERVER_KINDS,
    ActingUser,
    DatabasePasswordNeeded,
    LoginResult,
    acting_as,
    acting_for,
    allow_console_tables,
    build_url,
    choices,
    connect_and_login,
    console_tables_to_ask,
    login,
    open_database,
    organization,
    organizations,
    require_console_tables,
    test_connection,
)
from desktop_backup.usecases.settings import (
    LOW_SPACE,
    FolderCheck,
    PasswordState,
    TableChoices,
    backup_table_choices,
    check_backup_folder,
    password_state,
    save_backup_tables,
    toggle_auto_backup,
)
from desktop_backup.usecases.sources import (
    RestoreSource,
    restore_sources,
)

__all__ = [
    "ActingUser",
    "DatabasePasswordNeeded",
    "SHEET_NOT_CONFIRMED",
    "EncryptionOn",
    "EncryptionStatus",
    "change_refused",
    "confirm_sheet",
    "new_recovery_sheet",
    "set_extra_recipients",
    "FileNow",
    "FolderCheck",
    "LOW_SPACE",
    "LoginResult",
    "Overview",
    "PasswordState",
    "RestoreSource",
    "SERVER_KINDS",
    "ScopeLine",
    "ScopeReport",
    "TableChoices",
    "acting_as",
    "acting_for",
    "allow_console_tables",
    "backup_table_choices",
    "build_url",
    "check_backup_folder",
    "choices",
    "console_tables_to_ask",
    "connect_and_login",
    "copy_name",
    "database_key",
    "delete_backup",
    "encryption_status",
    "export_key",
    "fetch_offsite",
    "files_now",
    "history_notes",
    "import_key",
    "load_overview",
    "login",
    "open_database",
    "organization",
    "organizations",
    "ownership_report",
    "password_state",
    "push_offsite",
    "require_console_tables",
    "restore_sources",
    "save_backup_tables",
    "save_copy",
    "send_offsite",
    "set_monthly_copies", "set_offsite_remote",
    "test_connection",
    "toggle_auto_backup",
    "turn_encryption_off",
    "turn_encryption_on",
    "unlock_backup",
    "turn_offsite_off",
    "verify",
    "written_as",
]
