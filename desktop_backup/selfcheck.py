"""`desktop-backup --self-check`: does this installation work, end to end, on this machine?

Support staff run it after installing (also inside the frozen app): it proves the pieces a
packager can lose — Qt's platform plugin, the keyring backend, the database drivers, bcrypt —
by doing the real job on a throw-away demo database: log in, back up, verify, restore.
One line per step, then a verdict; exit 0 only when every step passed.
"""

from __future__ import annotations

import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from desktop_backup import __version__

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"


@dataclass
class Step:
    """One checked thing: its outcome and a sentence about it."""

    name: str
    outcome: str
    detail: str
    seconds: float = 0.0


@dataclass
class SelfCheckReport:
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(step.outcome != FAIL for step in self.steps)

    @property
    def verdict(self) -> str:
        failed = [s.name for s in self.steps if s.outcome == FAIL]
        if failed:
            return f"Self-check FAILED: {', '.join(failed)}. See the lines above."
        warned = sum(s.outcome == WARN for s in self.steps)
        note = f" ({warned} warning{'s' if warned != 1 else ''})" if warned else ""
        return f"Self-check passed: all {len(self.steps)} steps work on this machine{note}."

    def lines(self) -> list[str]:
        return [f"{s.outcome}  {s.name}: {s.detail}" for s in self.steps] + [self.verdict]


def keyring_step() -> Step:
    """A missing keyring is a packaging fault on Windows and macOS (they always have one);
    on Linux without a desktop session it is expected, and the console asks for passwords."""
    from desktop_backup.secrets import keyring_status

    status = keyring_status()
    if status.usable:
        return Step("Password store", PASS, f"{status.message} ({status.backend})")
    outcome = WARN if sys.platform.startswith("linux") else FAIL
    return Step("Password store", outcome, f"{status.message} ({status.backend})")


def run_self_check(qt_step: Callable[[], Step] | None = None,
                   emit: Callable[[str], None] = print) -> SelfCheckReport:
    """Run every step in a temporary folder; `qt_step` comes from the UI package."""
    report = SelfCheckReport()

    def record(step: Step) -> None:
        report.steps.append(step)
        emit(f"{step.outcome}  {step.name}: {step.detail}")

    record(Step("Version", PASS, f"Desktop Backup {__version__} on Python "
                                 f"{platform.python_version()}, {platform.platform()}"))
    if qt_step is not None:
        record(_timed("Qt window toolkit", qt_step))
    record(_timed("Password store", keyring_step))
    with tempfile.TemporaryDirectory(prefix="desktop-backup-self-check-") as tmp:
        _end_to_end(Path(tmp), record)
    emit(report.verdict)
    return report


def _timed(name: str, step: Callable[[], Step]) -> Step:
    started = time.monotonic()
    try:
        result = step()
    except Exception as exc:  # noqa: BLE001 - a self-check reports, it does not crash
        result = Step(name, FAIL, f"{exc.__class__.__name__}: {exc}")
    result.seconds = time.monotonic() - started
    return result


def _end_to_end(folder: Path, record: Callable[[Step], None]) -> None:
    """Demo database, login, backup, verify, restore: each a step; stop at the first FAIL."""
    from desktop_backup.archive import verify_archive
    from desktop_backup.auth import LoginThrottle, authenticate
    from desktop_backup.backup import Actor, run_backup
    from desktop_backup.config import SchemaMapping
    from desktop_backup.db import open_engine
    from desktop_backup.demo import DEMO_PASSWORD, create_demo_database
    from desktop_backup.restore import apply_restore, check_restore

    mapping = SchemaMapping()
    state: dict = {}

    def demo() -> Step:
        result = create_demo_database(folder / "demo.sqlite")
        state["engine"] = open_engine(result.url)
        return Step("Demo database", PASS, f"created with {result.rows} rows")

    def login() -> Step:
        session = authenticate(state["engine"], mapping, "medp.admin", DEMO_PASSWORD,
                               LoginThrottle(folder / "throttle.json"))
        state["session"] = session
        return Step("Login", PASS, f"{session.username} ({session.role}) of "
                                   f"{session.organization.name}")

    def backup() -> Step:
        session = state["session"]
        result = run_backup(state["engine"], mapping, session.organization,
                            Actor.of(session), folder / "backups",
                            trigger="cli")
        state["backup"] = result
        return Step("Backup", PASS, f"{result.rows} rows from {len(result.tables)} tables "
                                    f"in {result.duration_s:.1f} s")

    def verify() -> Step:
        report = verify_archive(state["backup"].path)
        return Step("Verify", PASS if report.ok else FAIL, report.message)

    def restore() -> Step:
        session = state["session"]
        plan = check_restore(state["engine"], mapping, session.organization,
                             state["backup"].path, restorer=Actor.of(session))
        if not plan.ok:
            return Step("Restore", FAIL, plan.message)
        result = apply_restore(state["engine"], mapping, session.organization, plan,
                               Actor.of(session), folder / "backups",
                               trigger="cli")
        same = result.rows == state["backup"].rows
        return Step("Restore", PASS if same else FAIL,
                    f"{result.rows} rows restored in one transaction"
                    + ("" if same else f", but the backup had {state['backup'].rows}"))

    try:
        for name, step in (("Demo database", demo), ("Login", login), ("Backup", backup),
                           ("Verify", verify), ("Restore", restore)):
            result = _timed(name, step)
            record(result)
            if result.outcome == FAIL:
                break
    finally:
        if "engine" in state:
            state["engine"].dispose()
