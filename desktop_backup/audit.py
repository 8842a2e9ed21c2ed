"""The one way an audit entry is made and written, so every line of the history says the same
things in the same places: what was done, to which organization, by whom, and how it ended.

The backup, the restore, the off-site queue, the use-case layer and the command line all start
their entry here (``audit_entry``) and record it here (``write_audit``,
``write_audit_quietly``) or, where the audit table is already at hand, through
``history.record``/``record_quietly``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from desktop_backup.db import friendly_error
from desktop_backup.history import AuditEntry, ensure_tables, record, record_quietly

log = logging.getLogger(__name__)


class Who(Protocol):
    """Anyone the audit can name: a work.Actor, a usecases.ActingUser, a slot's run."""

    @property
    def user_id(self) -> int | None: ...

    @property
    def username(self) -> str | None: ...


def audit_entry(action: str, org_id: int | None, who: Who | int | None, *,
                trigger: str | None, outcome: str = "success", **details) -> AuditEntry:
    """An audit line for `action` on organization `org_id` by `who` (a user id alone when
    no name is known, as for a dead run's slot; None: nobody known); ``details`` are
    AuditEntry's other fields (file, rows, bytes, message, ...)."""
    if who is None or isinstance(who, int):
        user_id, username = who, None
    else:
        user_id, username = who.user_id, who.username
    return AuditEntry(action=action, outcome=outcome, organization_id=org_id, user_id=user_id,
                      username=username, trigger=trigger, **details)


def write_audit(engine: Engine, line: AuditEntry, now: datetime) -> None:
    """Record `line`; a database that refuses it raises the sentence db.friendly_error gives."""
    try:
        _slots, table = ensure_tables(engine)
        record(engine, table, line, now.replace(tzinfo=None))
    except SQLAlchemyError as exc:
        raise friendly_error(exc, engine.url) from exc


def write_audit_quietly(engine: Engine, line: AuditEntry, now: datetime) -> None:
    """Record `line` where the database may be what failed: the outcome must not be hidden
    by a failure to record it, so that failure goes to the log instead."""
    try:
        _slots, table = ensure_tables(engine)
    except SQLAlchemyError as exc:
        log.warning("Could not record %s/%s in the audit: %s", line.action, line.outcome, exc)
        return
    record_quietly(engine, table, line, now)
