"""`desktop-backup --self-check`: does this installation work, end to end, on this machine?

Support staff run it after installing (also inside the frozen app): it proves the pieces a
packager can lose — Qt's window platform, the keyring backend, each database driver (loaded,
not connected), bcrypt and argon2, the local time zone the scheduler fires in — and does the
real job on a throw-away demo database: log in, back up, verify, restore.
One line per step, then a verdict; exit 0 only when every step passed.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from desktop_backup import __version__
from desktop_backup.auth import LoginThrottle, authenticate, verify_password
from desktop_backup.backup import run_backup
from desktop_backup.config import SchemaMapping
from desktop_backup.db import open_engine
from desktop_backup.demo import DEMO_PASSWORD, create_demo_database
from desktop_backup.keystore import keyring_status
from desktop_backup.notices import third_party_notices
from desktop_backup.offsite import Rclone, parse_remote, probe
from desktop_backup.opening import verify_archive
from desktop_backup.restore import apply_restore, check_restore
from desktop_backup.wording import plural
from desktop_backup.work import Actor, Site

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
        note = f" ({plural(warned, 'warning')})" if warned else ""
        return f"Self-check passed: all {len(self.steps)} steps work on this machine{note}."

    def lines(self) -> list[str]:
        return [f"{s.outcome}  {s.name}: {s.detail}" for s in self.steps] + [self.verdict]


def keyring_step() -> Step:
    """A missing keyring is a packaging fault on Windows and macOS (they always have one);
    on Linux without a desktop session it is expected, and the console asks for passwords."""
    status = keyring_status()
    if status.usable:
        return Step("Password store", PASS, f"{status.message} ({status.backend})")
    outcome = WARN if sys.platform.startswith("linux") else FAIL
    return Step("Password store", outcome, f"{status.message} ({status.backend})")


def drivers_step() -> Step:
    """Load every shipped driver through SQLAlchemy, as a connection would, without connecting:
    a frozen app that lost one (or psycopg's compiled libpq) fails here, not at a shop."""
    import psycopg  # here, not above: a frozen app that lost it fails this step, not all

    urls = {"PostgreSQL (psycopg)": "postgresql+psycopg://check@127.0.0.1/check",
            "MariaDB/MySQL (PyMySQL)": "mysql+pymysql://check@127.0.0.1/check"}
    if importlib.util.find_spec("MySQLdb") is not None:
        urls["MariaDB/MySQL (mysqlclient)"] = "mysql+mysqldb://check@127.0.0.1/check"
    for url in urls.values():
        create_engine(url).dispose()  # imports the DBAPI module; opens no connection
    loaded = ", ".join(urls)
    if psycopg.pq.__impl__ != "binary":
        return Step("Database drivers", FAIL, f"{loaded} load, but psycopg uses its "
                    f"{psycopg.pq.__impl__} implementation instead of the bundled binary one")
    shipped = "" if "mysqlclient" in loaded else "; mysqlclient not shipped, PyMySQL is used"
    return Step("Database drivers", PASS, f"{loaded} load (psycopg {psycopg.__version__}, "
                                          f"libpq {psycopg.pq.version()}){shipped}")


def hashing_step() -> Step:
    """Hash and check a password as Laravel does (bcrypt and argon2id), with the login's check."""
    import argon2  # here, not above: a lost package fails this step, not the whole check
    import bcrypt

    secret = "self-check"
    hashes = {"bcrypt": bcrypt.hashpw(secret.encode(), bcrypt.gensalt(4)).decode(),
              "argon2id": argon2.PasswordHasher(time_cost=1, memory_cost=8192).hash(secret)}
    wrong = [name for name, hashed in hashes.items()
             if not verify_password(secret, hashed) or verify_password("other", hashed)]
    if wrong:
        return Step("Password hashing", FAIL, f"{', '.join(wrong)} hashes do not check")
    return Step("Password hashing", PASS, f"bcrypt {bcrypt.__version__} and argon2-cffi "
                                          f"{version('argon2-cffi')} hash and check")


def schedule_step() -> Step:
    """The daily backup fires by the local clock: build the scheduler's trigger in the local
    time zone (Windows needs the tzdata package for it) and ask it for the next run."""
    # Here, not above: a frozen app that lost them (or tzdata) fails this step, not all.
    from apscheduler.triggers.cron import CronTrigger
    from tzlocal import get_localzone

    zone = get_localzone()
    trigger = CronTrigger(hour=2, minute=0, timezone=zone)
    upcoming = trigger.get_next_fire_time(None, datetime.now(zone))
    if upcoming is None:
        return Step("Scheduler", FAIL, f"no next run in the time zone {zone}")
    return Step("Scheduler", PASS, f"a 02:00 daily backup would next run "
                                   f"{upcoming:%Y-%m-%d %H:%M %Z} (time zone {zone})")


def notices_step() -> Step:
    """The LGPL packages (Qt/PySide6, psycopg) must ship with their licence texts."""
    notices = third_party_notices()
    lgpl = [n for n in notices if "LGPL" in n.licence]
    missing = [n.package for n in notices if not n.texts]
    if not lgpl or missing:
        return Step("Licence notices", FAIL, "no licence text for "
                    + (", ".join(missing) or "Qt/PySide6 and psycopg"))
    return Step("Licence notices", PASS, f"{len(notices)} packages, with their texts; LGPL: "
                                         f"{', '.join(n.package for n in lgpl)}")


def offsite_step(folder: Path) -> Step:
    """rclone is installed and works: write, read back and delete a file in a folder."""
    rc = Rclone(parse_remote(str(folder / "offsite"))[0])
    probe(rc)
    return Step("Off-site transport", PASS, f"rclone works ({rc.binary})")


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
    for name, step in (("Database drivers", drivers_step), ("Password hashing", hashing_step),
                       ("Scheduler", schedule_step), ("Licence notices", notices_step)):
        record(_timed(name, step))
    with tempfile.TemporaryDirectory(prefix="desktop-backup-self-check-") as tmp:
        record(_timed("Off-site transport", lambda: offsite_step(Path(tmp))))
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


def _edit_demo_customers(engine: Engine, org_id: int) -> int:
    """Rename the organization's customers in the self-check's own demo database."""
    with engine.begin() as conn:
        return conn.execute(text("UPDATE customers SET name = name || ' (self-check)' "
                                 "WHERE organization_id = :org"), {"org": org_id}).rowcount


def _end_to_end(folder: Path, record: Callable[[Step], None]) -> None:
    """Demo database, login, backup, verify, restore: each a step; stop at the first FAIL."""
    mapping = SchemaMapping()
    state: dict = {}

    def demo() -> Step:
        result = create_demo_database(folder / "demo.sqlite")
        state["engine"] = open_engine(result.url)
        return Step("Demo database", PASS, f"created with {plural(result.rows, 'row')}")

    def login() -> Step:
        session = authenticate(state["engine"], mapping, "medp.admin", DEMO_PASSWORD,
                               LoginThrottle(folder / "throttle.json"))
        state["session"] = session
        return Step("Login", PASS, f"{session.username} ({session.role}) of "
                                   f"{session.organization.name}")

    def backup() -> Step:
        session = state["session"]
        result = run_backup(Site(state["engine"], mapping), session.organization,
                            Actor.of(session), folder / "backups", trigger="cli")
        state["backup"] = result
        return Step("Backup", PASS, f"{plural(result.rows, 'row')} from {result.tables_words} "
                                    f"in {result.duration_s:.1f} s")

    def verify() -> Step:
        report = verify_archive(state["backup"].path)
        return Step("Verify", PASS if report.ok else FAIL, report.message)

    def restore() -> Step:
        session = state["session"]
        # A restore of unchanged data stops at "nothing would change": change some rows of
        # the throw-away demo first, so the transaction really runs and puts them back.
        edited = _edit_demo_customers(state["engine"], session.organization.id)
        plan = check_restore(Site(state["engine"], mapping), session.organization,
                             state["backup"].path, restorer=Actor.of(session))
        if not plan.ok:
            return Step("Restore", FAIL, plan.message)
        result = apply_restore(Site(state["engine"], mapping), session.organization, plan,
                               Actor.of(session), folder / "backups",
                               trigger="cli")
        changes = result.changes
        same = (changes.changed == edited and changes.brought_back + changes.changed
                + changes.unchanged == state["backup"].rows)
        return Step("Restore", PASS if same else FAIL,
                    f"{edited} edited rows put back in one transaction: {changes.sentence()}"
                    + ("" if same else f" The backup had {plural(state['backup'].rows, 'row')}."))

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
