"""`desktop-backup restore`: the command line's contract (shared/DESIGN.md).

Exit 0 restored, 1 refused or failed with nothing changed (one sentence on stderr), 2 usage.
"""

from __future__ import annotations

import io
import json
import sys

import pytest

from desktop_backup.cli import main
from desktop_backup.demo import DEMO_PASSWORD
from desktop_backup.restore import list_restore_points
from desktop_backup.work import Site
from tests import test_restore as shared
from tests.auth_support import cheap_passwords
from tests.restore_support import backup, db_digest, org_digest, org_of, run, wipe_and_change

# The restore tests' fixtures: a copy of one SQLite demo database per test.
sqlite_url = shared.sqlite_url
sqlite_engine = shared.sqlite_engine


class _Terminal(io.StringIO):
    """Standard input that is a terminal and has the user's answer typed in."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def cli(app_paths, capsys, monkeypatch, tmp_path, sqlite_url, sqlite_engine):
    # The demo's hashes cost 12, like Laravel's; each login would take a quarter second.
    cheap_passwords(sqlite_engine)
    monkeypatch.setenv("DESKTOP_BACKUP_PASSWORD", DEMO_PASSWORD)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # no terminal unless a test says so
    folder = tmp_path / "backups"

    def run_(archive, *extra: str, org: str = "MEDP", user: str = "medp.admin"):
        args = ["restore", str(archive), "--db", sqlite_url, "--org", org, "--user", user,
                "--dir", str(folder), *extra]
        code = main(args, paths=app_paths)
        out, err = capsys.readouterr()
        return code, out, err
    run_.folder = folder
    run_.paths = app_paths
    run_.capsys = capsys
    return run_


def _last_json(cli) -> str:
    out, _err = cli.capsys.readouterr()
    return out


def test_restore_with_yes_and_json(cli, sqlite_engine):
    medp = org_of(sqlite_engine)
    before = org_digest(sqlite_engine, medp.id)
    archive = backup(sqlite_engine, cli.folder)
    wipe_and_change(sqlite_engine)
    code, out, err = cli(archive, "--yes", "--json")
    assert code == 0, err
    result = json.loads(out)  # stdout holds exactly one JSON object
    assert result["ok"] is True and "Restored Medplus Pharmacy" in result["message"]
    assert result["rows"] == sum(result["tables"].values()) > 0
    assert result["tables"]["customers"] == next(
        t["rows_in_backup"] for t in result["preview"] if t["table"] == "customers")
    assert result["restore_point"].endswith(".zip") and "restore-points" in \
        result["restore_point"]
    assert "What the restore changes" in err  # the preview went to stderr
    assert org_digest(sqlite_engine, medp.id) == before


def test_the_preview_is_printed_and_a_terminal_user_is_asked(cli, sqlite_engine, monkeypatch):
    medp = org_of(sqlite_engine)
    archive = backup(sqlite_engine, cli.folder)
    wipe_and_change(sqlite_engine)
    changed = db_digest(sqlite_engine)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": DEMO_PASSWORD)
    monkeypatch.setattr(sys, "stdin", _Terminal("no\n"))
    code, out, err = cli(archive)
    # Declining is a choice, not a failure.
    assert code == 0 and out.strip().splitlines()[-1] == "Nothing was restored."
    assert "customers" in out and "Type yes" in err
    # The window's four words, with exact counts: one customer was added since the backup.
    assert "Brought back" in out and "Unchanged" in out and ", Removed 1." in out
    assert db_digest(sqlite_engine) == changed

    monkeypatch.setattr(sys, "stdin", _Terminal("yes\n"))
    code, out, err = cli(archive)
    assert code == 0, err
    assert "Saving the data as it is now as a restore point, then restoring:" in err
    point = list_restore_points(cli.folder, medp)[0]
    assert out.strip().splitlines()[-2].startswith("Restored Medplus Pharmacy")
    assert out.strip().splitlines()[-1] == f"Restore point: {point.resolve()}"  # whole path
    # The restore point undoes it, with the same command.
    code, out, err = cli(point, "--yes")
    assert code == 0, err
    assert db_digest(sqlite_engine) == changed


def test_without_a_terminal_and_without_yes_it_refuses(cli, sqlite_engine):
    archive = backup(sqlite_engine, cli.folder)
    wipe_and_change(sqlite_engine)
    before = db_digest(sqlite_engine)
    code, out, err = cli(archive)
    assert code == 2 and "--yes" in err and out == ""
    assert db_digest(sqlite_engine) == before


@pytest.mark.parametrize("case", ["other organization", "wrong password", "may not restore",
                                  "staff", "missing file", "a folder", "dropped column"])
def test_refusals_exit_1_with_one_sentence_and_change_nothing(cli, sqlite_engine, monkeypatch,
                                                              tmp_path, case):
    archive = backup(sqlite_engine, cli.folder, "CITY" if case == "other organization"
                     else "MEDP")
    kwargs, expected = {}, ""
    if case == "other organization":
        kwargs, expected = {"user": "superadmin"}, "its own organization"
    elif case == "wrong password":
        monkeypatch.setenv("DESKTOP_BACKUP_PASSWORD", "not-the-password")
        expected = "username or password is not correct"
    elif case == "may not restore":
        kwargs, expected = {"user": "city.admin"}, "cannot back up or restore"
    elif case == "staff":
        kwargs, expected = {"user": "medp.staff"}, "only admins"
    elif case == "missing file":
        archive, expected = tmp_path / "nowhere.zip", "There is no backup file"
    elif case == "a folder":
        archive, expected = tmp_path, "There is no backup file"
    else:
        run(sqlite_engine, "ALTER TABLE customers DROP COLUMN gstin")
        expected = "--accept-dropped-columns"
    before = db_digest(sqlite_engine)
    code, out, err = cli(archive, "--yes", **kwargs)
    assert code == 1, err
    message = err.strip()
    assert message.startswith("desktop-backup: ") and "\n" not in message and expected in message
    assert db_digest(sqlite_engine) == before
    if case == "dropped column":
        code, out, err = cli(archive, "--yes", "--accept-dropped-columns")
        assert code == 0, err


def test_a_failure_in_json_mode_is_one_object(cli, sqlite_engine, tmp_path):
    code, out, err = cli(tmp_path / "nowhere.zip", "--yes", "--json")
    assert code == 1
    assert json.loads(out) == {"ok": False, "message": json.loads(out)["message"]}
    assert "nowhere.zip" in json.loads(out)["message"]


@pytest.mark.parametrize("argv", [
    ["restore", "x.zip", "--db", "sqlite:///x.sqlite", "--user", "u"],  # no --org
    ["restore", "--db", "sqlite:///x.sqlite", "--org", "1", "--user", "u"],  # no archive
])
def test_usage_errors_exit_2(app_paths, capsys, argv):
    with pytest.raises(SystemExit) as exited:
        main(argv, paths=app_paths)
    assert exited.value.code == 2


def test_the_preview_keeps_its_columns_apart_for_a_million_rows(sqlite_engine, tmp_path):
    """The printed preview sizes its columns to the numbers: a million rows never runs into
    the column beside it."""
    from dataclasses import replace

    from desktop_backup.config import SchemaMapping
    from desktop_backup.restore import check_restore, preview_text

    medp = org_of(sqlite_engine)
    plan = check_restore(Site(sqlite_engine, SchemaMapping()), medp,
                         backup(sqlite_engine, tmp_path))
    assert plan.ok, plan.message
    plan.tables = [replace(plan.tables[0], rows_now=0, rows_in_backup=1_009_309, to_delete=0,
                           to_insert=1_009_309, to_update=0, unchanged=0)]
    lines = preview_text(plan, medp).splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["table", "now"])
    row, total = lines[header + 1].split(), lines[header + 2].split()
    assert row == [plan.tables[0].table, "0", "1,009,309", "1,009,309", "0", "0", "0"]
    assert total == ["all", "tables", "0", "1,009,309", "1,009,309", "0", "0", "0"]
    assert len({len(lines[header]), len(lines[header + 1]), len(lines[header + 2])}) == 1


def test_a_brand_new_workstation_can_restore(cli, sqlite_url, sqlite_engine, tmp_path):
    """A home folder that has never been used: the console makes its own folders (0700)."""
    from desktop_backup.config import AppPaths

    archive = backup(sqlite_engine, tmp_path / "from-the-shop")
    wipe_and_change(sqlite_engine)
    fresh = AppPaths(*(tmp_path / "new-home" / part for part in ("config", "data", "logs")))
    code = main(["restore", str(archive), "--db", sqlite_url, "--org", "MEDP", "--user",
                 "medp.admin", "--yes", "--json"], paths=fresh)
    out = json.loads(_last_json(cli))
    assert code == 0, out
    assert out["ok"] and "Restored Medplus Pharmacy" in out["message"]
    backups = fresh.default_backup_dir
    assert list_restore_points(backups, org_of(sqlite_engine))  # the restore point is there
    for folder in (fresh.data_dir, backups, backups / "restore-points"):
        assert folder.stat().st_mode & 0o777 == 0o700, folder


def test_a_chosen_folder_that_is_missing_asks_about_its_drive(cli, sqlite_url, sqlite_engine,
                                                              tmp_path):
    """Only a folder the person chose (a USB drive) gets "is its drive connected?"."""
    archive = backup(sqlite_engine, tmp_path / "from-the-shop")
    wipe_and_change(sqlite_engine)  # something to restore, so a restore point is needed
    before = db_digest(sqlite_engine)
    code = main(["restore", str(archive), "--db", sqlite_url, "--org", "MEDP", "--user",
                 "medp.admin", "--yes", "--dir", str(tmp_path / "usb" / "backups")],
                paths=cli.paths)
    _out, err = cli.capsys.readouterr()
    assert code == 1 and "is its drive connected?" in err
    assert db_digest(sqlite_engine) == before


def test_nothing_would_change_is_said_and_nothing_is_asked_or_made(cli, sqlite_engine,
                                                                    monkeypatch):
    medp = org_of(sqlite_engine)
    archive = backup(sqlite_engine, cli.folder)
    before = db_digest(sqlite_engine)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": DEMO_PASSWORD)
    monkeypatch.setattr(sys, "stdin", _Terminal(""))  # a terminal, but no answer typed
    code, out, err = cli(archive)
    assert code == 0, err
    assert "Nothing would change: Medplus Pharmacy, Pune's data is already exactly" in out
    assert "Type yes" not in err
    assert out.strip().splitlines()[-1].startswith("Nothing would change")
    assert not list_restore_points(cli.folder, medp)
    assert db_digest(sqlite_engine) == before
    code, out, _err = cli(archive, "--yes", "--json")
    result = json.loads(out)
    assert result["ok"] and result["restore_point"] is None
    assert result["changes"] == {"brought_back": 0, "changed": 0,
                                 "unchanged": result["unchanged"], "removed": 0}
