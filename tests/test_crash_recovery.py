"""A killed backup blocks nothing; a crowd of backups makes one; a busy database is waited for.

Real processes, killed with SIGKILL, on SQLite, MariaDB and PostgreSQL: the claim is a lock
that dies with its holder, so the next backup (on the same workstation or another one, i.e.
another home folder) proceeds at once, and nothing shows "Backing up now" for a dead run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from desktop_backup.backup import run_backup
from desktop_backup.busy import WAITING, DatabaseBusy
from desktop_backup.cli import main
from desktop_backup.config import AppPaths, SchemaMapping
from desktop_backup.db import open_engine
from desktop_backup.demo import DEMO_PASSWORD
from desktop_backup.history import ensure_tables, recent, week_slots
from desktop_backup.organizations import find_organization
from desktop_backup.work import Actor, Cancelled, Site
from tests.busy_sqlite import billing_program_locks
from tests.clock import FakeClock  # a Wednesday: the slots asserted below

ROOT = Path(__file__).resolve().parent.parent
MEDP = ["--org", "MEDP", "--user", "medp.admin"]
ADMIN = Actor(3, "medp.admin")


def home(root: Path) -> AppPaths:
    """One workstation: its own settings, data (default backup folder) and logs."""
    return AppPaths(root / "config", root / "data", root / "logs")


@pytest.fixture
def cli(monkeypatch, capsys):
    monkeypatch.setenv("DESKTOP_BACKUP_PASSWORD", DEMO_PASSWORD)

    def run(paths: AppPaths, *argv: str) -> tuple[int, dict]:
        code = main([*argv, "--json"], paths=paths)
        out, _err = capsys.readouterr()
        return code, json.loads(out)
    return run


def start_dying_backup(url: str, root: Path) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-m", "tests.crash_child", url, str(root)],
                             cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = child.stdout.readline()
    if line.strip() != "mid-run":
        child.kill()
        pytest.fail(f"the backup process did not reach mid-run: {line!r}")
    return child


def today_slot(outcome: dict) -> dict:
    return next(slot for slot in outcome["slots"] if slot["today"])


@pytest.mark.parametrize("workstation", ["same", "another"])
def test_a_killed_backup_blocks_nothing(demo_db, dialect, tmp_path, cli, workstation):
    dead = home(tmp_path / "dead-home")
    folder = dead.default_backup_dir
    child = start_dying_backup(demo_db, tmp_path / "dead-home")
    try:
        partials = list(folder.glob(".*.partial"))
        assert partials, "the dying run had a temporary file"
        here = dead if workstation == "same" else home(tmp_path / "other-home")
        # Alive: respected even with --force, and not a failure (exit 0, audited as skipped).
        code, out = cli(here, "backup", "--db", demo_db, *MEDP, "--force")
        assert code == 0 and out["ok"] and out["skipped"], out
        assert out["status"] == "running_elsewhere"
        assert "already being made on" in out["message"] and f"process {child.pid}" in out[
            "message"]
        code, out = cli(here, "list", "--db", demo_db, "--org", "MEDP")
        assert today_slot(out)["state"] == "running"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
        child.stdout.close()
    # Dead: nothing says "Backing up now", and the next backup runs at once.
    code, out = cli(here, "list", "--db", demo_db, "--org", "MEDP")
    assert today_slot(out)["state"] == "failed", today_slot(out)
    assert "stopped before it finished" in today_slot(out)["error"]
    assert "Backing up now" not in out["message"]
    code, out = cli(here, "backup", "--db", demo_db, *MEDP)
    assert code == 0 and out["ok"] and not out["skipped"], out
    assert Path(out["path"]).is_file() and out["rows"] > 0
    if workstation == "same":
        assert not any(p.exists() for p in partials)  # the dead run's leftovers are swept
    code, out = cli(here, "list", "--db", demo_db, "--org", "MEDP")
    assert today_slot(out)["state"] == "succeeded"
    engine = open_engine(demo_db)
    try:
        history = recent(engine, ensure_tables(engine)[1], 1)
    finally:
        engine.dispose()
    outcomes = [(e.action, e.outcome) for e in history]
    assert outcomes.count(("backup", "failed")) == 1  # the killed run, once
    interrupted = next(e for e in history if e.outcome == "failed")
    assert f"process {child.pid}" in interrupted.message
    assert outcomes[0] == ("backup", "success")
    if dialect != "sqlite":  # SQLite: no one writes while a backup reads (the log has it)
        assert ("skipped", "skipped") in outcomes


RACERS = 20


def test_twenty_simultaneous_backups_make_one_and_the_others_are_not_failures(demo_db,
                                                                           tmp_path):
    """Twenty workstations (processes, each with its own home) start at once."""
    folder = tmp_path / "shared-backups"
    env = dict(os.environ, DESKTOP_BACKUP_PASSWORD=DEMO_PASSWORD)
    racers = []
    for n in range(RACERS):
        env_n = dict(env, DESKTOP_BACKUP_HOME=str(tmp_path / f"home-{n}"))
        racers.append(subprocess.Popen(
            [sys.executable, "-m", "desktop_backup", "backup", "--db", demo_db, *MEDP,
             "--dir", str(folder), "--json"], cwd=ROOT, env=env_n, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    results = []
    for racer in racers:
        out, err = racer.communicate(timeout=300)
        results.append((racer.returncode, json.loads(out), err))
    failed = [(code, out["message"], err[-800:]) for code, out, err in results if code]
    assert not failed, failed
    made = [out for _code, out, _err in results if not out["skipped"]]
    assert len(made) == 1
    assert [p.name for p in folder.iterdir()] == [Path(made[0]["path"]).name]
    for _code, out, _err in results:
        if out["skipped"]:
            assert ("already being made" in out["message"]
                    or "already succeeded" in out["message"]), out
    engine = open_engine(demo_db)
    try:
        history = recent(engine, ensure_tables(engine)[1], 1)
    finally:
        engine.dispose()
    outcomes = sorted((e.action, e.outcome) for e in history)
    assert outcomes == [("backup", "success")] + [("skipped", "skipped")] * (RACERS - 1)


# --- a busy SQLite database: the billing program holds BEGIN EXCLUSIVE -------------------------


def medp(url: str):
    engine = open_engine(url)
    with engine.connect() as conn:
        return engine, find_organization(conn, SchemaMapping(), "MEDP")


def test_a_database_locked_for_a_few_seconds_is_waited_for_visibly(sqlite_demo_db, tmp_path):
    engine, org = medp(sqlite_demo_db)
    seen: list = []
    try:
        with billing_program_locks(sqlite_demo_db, 3):
            result = run_backup(Site(engine, SchemaMapping()), org, ADMIN, tmp_path / "b",
                                trigger="login", progress=seen.append, busy_wait_s=30)
        assert result.ok and not result.skipped and result.path.is_file()
        assert seen[0].waiting == WAITING  # said at once, not after a busy timeout
        assert not seen[-1].waiting and seen[-1].rows_done == result.rows
        assert [(e.action, e.outcome) for e in recent(engine, ensure_tables(engine)[1], 1)
                ] == [("backup", "success")]
    finally:
        engine.dispose()


def test_a_database_locked_longer_than_the_wait_fails_with_a_sentence(sqlite_demo_db,
                                                                      tmp_path, caplog):
    engine, org = medp(sqlite_demo_db)
    seen: list = []
    try:
        with billing_program_locks(sqlite_demo_db, 5):
            started = time.monotonic()
            with pytest.raises(DatabaseBusy) as failure:
                run_backup(Site(engine, SchemaMapping(), FakeClock()), org, ADMIN,
                           tmp_path / "b", trigger="login", progress=seen.append,
                           busy_wait_s=2)
        message = str(failure.value)
        assert message.startswith("The SQLite file") and "stayed busy" in message
        assert "try again" in message and "Nothing was changed" in message
        assert time.monotonic() - started >= 2
        assert seen and all(p.waiting == WAITING for p in seen)
        assert not (tmp_path / "b").exists()
        history = recent(engine, ensure_tables(engine)[1], 1)
        assert [(e.action, e.outcome, e.message) for e in history] == [
            ("backup", "failed", message)]
        assert message in caplog.text
        assert "wednesday" not in week_slots(engine, ensure_tables(engine)[0], 1) or (
            week_slots(engine, ensure_tables(engine)[0], 1)["wednesday"].status != "running")
    finally:
        engine.dispose()


def test_a_cancel_while_waiting_is_cancelled_everywhere(sqlite_demo_db, tmp_path, caplog):
    engine, org = medp(sqlite_demo_db)
    cancel = threading.Event()
    try:
        with billing_program_locks(sqlite_demo_db, 4):
            with pytest.raises(Cancelled):
                run_backup(Site(engine, SchemaMapping()), org, ADMIN, tmp_path / "b",
                           trigger="manual", progress=lambda p: cancel.set(), cancel=cancel,
                           busy_wait_s=60)
        history = recent(engine, ensure_tables(engine)[1], 1)
        assert [(e.action, e.outcome) for e in history] == [("backup", "cancelled")]
        assert "cancelled" in caplog.text.lower()
        assert week_slots(engine, ensure_tables(engine)[0], 1) == {}  # never claimed
    finally:
        engine.dispose()


SERVER_LOCKS = {  # what a billing program's schema change or bulk job holds on a server
    "mysql": ("LOCK TABLES customers WRITE", "UNLOCK TABLES"),
    "postgres": ("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE", "ROLLBACK"),
}


@pytest.mark.parametrize("dialect", ["mysql", "postgres"])
def test_a_server_table_locked_longer_than_the_wait_fails_with_a_sentence(demo_db, dialect,
                                                                         tmp_path):
    """The server's own lock wait is bounded (10 s a try), then the backup's wait decides."""
    engine, org = medp(demo_db)
    take, give = SERVER_LOCKS[dialect]
    holder_engine = open_engine(demo_db)
    holder = holder_engine.connect()
    try:
        if dialect == "postgres":
            holder.exec_driver_sql("BEGIN")
        holder.exec_driver_sql(take)
        seen: list = []
        started = time.monotonic()
        with pytest.raises(DatabaseBusy, match="stayed busy") as failure:
            run_backup(Site(engine, SchemaMapping(), FakeClock()), org, ADMIN, tmp_path / "b",
                       trigger="login", progress=seen.append, busy_wait_s=12)
        assert 12 <= time.monotonic() - started < 40  # two tries of 10 s, not for ever
        assert any(p.waiting == WAITING for p in seen)
        holder.exec_driver_sql(give)
        holder.commit()
        slot = week_slots(engine, ensure_tables(engine)[0], 1)["wednesday"]
        assert slot.status == "failed" and "stayed busy" in slot.error_message
        assert recent(engine, ensure_tables(engine)[1], 1)[0].message.startswith(
            str(failure.value))
        assert not any((tmp_path / "b").glob("*"))  # no temporary file left (or no folder)
    finally:
        holder.invalidate()  # the session ends: its locks go with it
        holder.close()
        holder_engine.dispose()
        engine.dispose()
