"""Nothing sensitive left behind: killed runs' scratch folders and partial archives are swept,
live ones never; a password inside --db is warned about, and the environment offers another way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from desktop_backup.backup import run_backup
from desktop_backup.cli import main
from desktop_backup.config import SchemaMapping
from desktop_backup.db import open_engine
from desktop_backup.organizations import find_organization
from desktop_backup.restore import RestoreHooks, apply_restore
from desktop_backup.scratch import scratch_parent, sweep_partials, sweep_scratch
from desktop_backup.work import Actor, Site
from tests.clock import FakeClock

pytestmark = pytest.mark.skipif(os.name != "posix", reason="kills processes with SIGKILL")

MAPPING = SchemaMapping()
ADMIN = Actor(3, "medp.admin", "admin")
SUPER = Actor(1, "superadmin", "super_admin")  # may restore the lost owner's row
ROOT = Path(__file__).resolve().parent.parent

HOLD_SCRATCH = """
import sys, time
from pathlib import Path
from desktop_backup.scratch import ScratchFolder
parent = Path(sys.argv[1]) if len(sys.argv) > 1 else None
folder = ScratchFolder(parent)
(folder.path / "rows.tsv").write_text("1\\tsecret customer\\n")
print(folder.path, flush=True)
time.sleep(120)
"""

HOLD_PARTIAL = """
import sys, time
from pathlib import Path
from desktop_backup.backup import write_archive
from desktop_backup.work import Actor, Site
from desktop_backup.config import SchemaMapping
from desktop_backup.db import open_engine

def stall(progress):
    print("writing", flush=True)
    time.sleep(120)

engine = open_engine(sys.argv[1])
write_archive(Site(engine, SchemaMapping()), 1, Path(sys.argv[2]), Actor(3, "medp.admin"),
              trigger="pre-restore", progress=stall)
"""


def start(script: str, *args: str) -> tuple[subprocess.Popen, str]:
    """A child process running `script`; returns it and the first line it prints."""
    child = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE,
                             text=True, cwd=ROOT)
    line = child.stdout.readline().strip()
    assert line, "the child process did not start"
    return child, line


def kill(child: subprocess.Popen) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()


def age(path: Path, seconds: float = 3600) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def org_of(engine, key="MEDP"):
    with engine.connect() as conn:
        return find_organization(conn, MAPPING, key)


def test_a_killed_runs_scratch_folder_is_swept_and_a_live_ones_is_kept(tmp_path):
    parent = tmp_path / "scratch"
    parent.mkdir(mode=0o700)
    killed, killed_path = start(HOLD_SCRATCH, str(parent))
    live, live_path = start(HOLD_SCRATCH, str(parent))
    try:
        kill(killed)
        for folder in (killed_path, live_path):
            age(Path(folder))
        assert sweep_scratch(parent) == 1
        assert not Path(killed_path).exists()
        assert (Path(live_path) / "rows.tsv").is_file()  # its owner is still at work
    finally:
        kill(live)
    assert sweep_scratch(parent) == 1 and list(parent.iterdir()) == []


def test_scratch_folders_live_in_a_private_parent_swept_after_every_backup(sqlite_demo_db,
                                                                           tmp_path):
    parent = scratch_parent()
    assert parent.stat().st_mode & 0o777 == 0o700 and parent.stat().st_uid == os.getuid()
    killed, path = start(HOLD_SCRATCH)
    kill(killed)
    assert Path(path).parent == parent and Path(path, "rows.tsv").is_file()
    engine = open_engine(sqlite_demo_db)
    try:
        run_backup(Site(engine, MAPPING, FakeClock()), org_of(engine), ADMIN, tmp_path / "backups",
                   trigger="manual")
    finally:
        engine.dispose()
    assert not Path(path).exists()


def test_a_killed_restore_points_partial_is_swept_at_the_next_start(sqlite_demo_db, app_paths):
    points = app_paths.default_backup_dir / "restore-points"
    points.mkdir(parents=True)
    target = points / "org_MEDP_restore-point_20261125-100000.zip"
    child, _line = start(HOLD_PARTIAL, sqlite_demo_db, str(target))
    try:
        [partial] = points.glob(".*.partial")
        age(partial)  # quiet long enough, but its writer lives: kept
        assert sweep_partials(app_paths.default_backup_dir) == 0 and partial.exists()
    finally:
        kill(child)
    assert main(["verify", str(app_paths.data_dir / "none.zip")], paths=app_paths) == 1
    assert list(points.iterdir()) == []


@pytest.mark.parametrize("dialect", ["mysql"])
def test_mysql_load_data_rows_sit_in_a_locked_scratch_folder(demo_db, dialect, tmp_path):
    from tests.restore_support import delete_organization

    seen = []

    class SweepDuringTheLoad(RestoreHooks):
        def loading(self, file) -> None:
            sweep_scratch()  # a second console starting now must not take the live rows
            seen.append((file.parent.parent, file.parent.is_dir()))
    engine = open_engine(demo_db)
    try:
        medp = org_of(engine)
        archive = run_backup(Site(engine, MAPPING, FakeClock()), medp, ADMIN, tmp_path / "backups",
                             trigger="manual").path
        delete_organization(engine, medp.id)
        apply_restore(Site(engine, MAPPING, FakeClock()), medp, archive, SUPER,
                      tmp_path / "backups", hooks=SweepDuringTheLoad())
    finally:
        engine.dispose()
    assert seen and set(seen) == {(scratch_parent(), True)}
    assert not any(p.name.startswith(f"run-{os.getpid()}-") for p in scratch_parent().iterdir())


@pytest.mark.parametrize("dialect", ["mysql"])
def test_a_password_in_the_db_url_is_warned_about_and_the_environment_offers_one(
        demo_db, dialect, app_paths, capsys, monkeypatch):
    with_password = make_url(demo_db).set(password="not-the-password")
    shown = with_password.render_as_string(hide_password=False)
    assert main(["list", "--db", shown, "--org", "MEDP"], paths=app_paths) == 1
    err = capsys.readouterr().err
    assert "holds a database password" in err and "DESKTOP_BACKUP_DB_PASSWORD" in err
    # The test server's root has no password: the variable's wrong one is refused, so it
    # was used; without it the same address works, and nothing is warned.
    monkeypatch.setenv("DESKTOP_BACKUP_DB_PASSWORD", "not-the-password")
    assert main(["list", "--db", demo_db, "--org", "MEDP"], paths=app_paths) == 1
    assert "holds a database password" not in capsys.readouterr().err
    monkeypatch.delenv("DESKTOP_BACKUP_DB_PASSWORD")
    assert main(["list", "--db", demo_db, "--org", "MEDP"], paths=app_paths) == 0
    assert "warning" not in capsys.readouterr().err
