"""The command line's contract for backup, list and verify (shared/DESIGN.md)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from desktop_backup.cli import main
from desktop_backup.config import SchemaMapping
from desktop_backup.db import open_engine
from desktop_backup.demo import DEMO_PASSWORD
from desktop_backup.organizations import find_organization, set_auto_backup_tables


@pytest.fixture
def run(app_paths, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DESKTOP_BACKUP_PASSWORD", DEMO_PASSWORD)
    backups = tmp_path / "backups"

    def run_(*argv: str, dir_: bool = True):
        args = list(argv)
        if dir_ and args[0] in ("backup", "list"):
            args += ["--dir", str(backups)]
        code = main(args, paths=app_paths)
        out, err = capsys.readouterr()
        return code, out, err
    run_.backups = backups
    return run_


def test_backup_then_nothing_to_do_then_force(run, demo_db):
    code, out, err = run("backup", "--db", demo_db, "--org", "MEDP", "--user", "medp.admin",
                         "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["ok"] and result["rows"] == sum(result["tables"].values()) > 0
    assert result["path"].endswith("_backup.zip") and result["size"] > 0
    assert "customers" in result["tables"] and "states" not in result["tables"]
    code, out, _ = run("backup", "--db", demo_db, "--org", "MEDP", "--user", "medp.admin")
    assert code == 0 and "already succeeded" in out and "nothing to do" in out
    code, out, _ = run("backup", "--db", demo_db, "--org", "1", "--user", "medp.owner",
                       "--force", "--json")
    assert code == 0 and not json.loads(out)["skipped"]


def test_verify_and_list(run, sqlite_demo_db):
    code, out, _ = run("backup", "--db", sqlite_demo_db, "--org", "CITY", "--user",
                       "city.admin", "--json")
    path = json.loads(out)["path"]
    code, out, _ = run("verify", path)
    assert code == 0 and "complete, undamaged backup of City Care Chemists" in out
    code, out, _ = run("verify", path, "--json")
    report = json.loads(out)
    assert report["ok"] and report["organization"]["code"] == "CITY" and report["rows"] > 0
    code, out, _ = run("list", "--db", sqlite_demo_db, "--org", "CITY")
    assert code == 0
    assert "Wednesday" in out or "Monday" in out
    assert sum("Backed up" in line for line in out.splitlines()) == 1
    assert "city.admin" in out and "backup" in out
    code, out, _ = run("list", "--db", sqlite_demo_db, "--org", "CITY", "--json")
    listing = json.loads(out)
    assert [s["weekday"] for s in listing["slots"]][0] == "monday" and len(listing["slots"]) == 7
    assert [s["state"] for s in listing["slots"]].count("succeeded") == 1
    assert listing["audit"][0]["action"] == "backup"


def test_the_web_app_format_is_written_beside_the_slot_and_partial_backups_say_so(
        run, sqlite_demo_db):
    common = ("--db", sqlite_demo_db, "--org", "CITY", "--user", "city.admin")
    code, out, _ = run("backup", *common, "--json")
    native = json.loads(out)
    assert native["scope"]["tables"] == native["scope"]["of"] == len(native["tables"])
    code, out, err = run("backup", *common, "--format", "seed", "--force", "--json")
    assert code == 0, err
    seed = json.loads(out)
    assert "/web-app-format/" in seed["path"] and seed["path"] != native["path"]
    assert seed["scope"]["tables"] < seed["scope"]["of"] and "(partial)" in seed["message"]
    code, out, _ = run("verify", seed["path"], "--json")
    report = json.loads(out)
    assert report["partial"] and "made by Desktop Backup in the web app's format" in \
        report["message"]
    code, out, _ = run("verify", native["path"])
    assert "complete, undamaged backup" in out  # the day's native backup is still there
    code, out, _ = run("list", *common[:4], "--json")
    today = next(s for s in json.loads(out)["slots"] if s["today"])
    assert today["path"] == native["path"] and today["partial"] == ""

    # Narrowed to one table: the next backup, and the list, say "partial".
    engine = open_engine(sqlite_demo_db)
    try:
        with engine.begin() as conn:
            org = find_organization(conn, SchemaMapping(), "CITY")
            set_auto_backup_tables(conn, SchemaMapping(), org, ["customers"])
    finally:
        engine.dispose()
    code, out, _ = run("backup", *common, "--force", "--json")
    narrowed = json.loads(out)
    assert list(narrowed["tables"]) == ["customers"] and "(partial)" in narrowed["message"]
    code, out, _ = run("list", *common[:4])
    words = f"partial: 1 of {native['scope']['of']} tables"
    assert any("Backed up " in line and f"({words})" in line for line in out.splitlines())
    assert any(line.rstrip().endswith(words) for line in out.splitlines())  # the audit


@pytest.mark.parametrize("args, expected", [
    (("--org", "NOPE", "--user", "medp.admin"), "No organization has the id or code 'NOPE'"),
    (("--org", "CITY", "--user", "medp.admin"), "cannot back up or restore City Care"),
    (("--org", "MEDP", "--user", "medp.staff"), "staff account"),
    (("--org", "MEDP", "--user", "nobody"), "username or password is not correct"),
])
def test_refusals_exit_1_with_one_sentence(run, sqlite_demo_db, args, expected):
    code, out, err = run("backup", "--db", sqlite_demo_db, *args)
    assert code == 1
    assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not run.backups.exists() or not any(run.backups.iterdir())


def test_super_admin_backs_up_any_organization(run, sqlite_demo_db):
    code, out, err = run("backup", "--db", sqlite_demo_db, "--org", "GRNL", "--user",
                         "superadmin", "--json")
    assert code == 0, err
    assert json.loads(out)["path"].endswith("org_GRNL_" + json.loads(out)["weekday"]
                                            + "_backup.zip")


def test_a_missing_backup_folder_is_a_failure_recorded_in_the_audit(run, sqlite_demo_db,
                                                                    tmp_path):
    missing = tmp_path / "unplugged" / "drive"
    code, _, err = run("backup", "--db", sqlite_demo_db, "--org", "MEDP", "--user",
                       "medp.admin", "--dir", str(missing), dir_=False)
    assert code == 1 and "does not exist" in err
    code, out, _ = run("list", "--db", sqlite_demo_db, "--org", "MEDP", "--json")
    audit = json.loads(out)["audit"]
    assert audit[0]["outcome"] == "failed" and "does not exist" in audit[0]["message"]


def test_usage_errors_exit_2(run, tmp_path):
    code, _, err = run("backup", "--db", "not a url", "--org", "1", "--user", "x")
    assert code == 2 and "not a database address" in err
    with pytest.raises(SystemExit) as missing_args:
        main(["backup", "--org", "1"])
    assert missing_args.value.code == 2


def test_no_terminal_and_no_password_variable_is_a_usage_error(run, sqlite_demo_db,
                                                              monkeypatch):
    monkeypatch.delenv("DESKTOP_BACKUP_PASSWORD")
    code, _, err = run("backup", "--db", sqlite_demo_db, "--org", "MEDP", "--user", "medp.admin")
    assert code == 2 and "DESKTOP_BACKUP_PASSWORD" in err


def test_verify_of_a_foreign_file_exits_1(run, tmp_path):
    foreign = tmp_path / "holiday-photos.zip"
    import zipfile

    with zipfile.ZipFile(foreign, "w") as zf:
        zf.writestr("beach.jpg", b"\xff\xd8 not really")
    code, out, err = run("verify", str(foreign))
    assert code == 1 and "not a backup" in err and out == ""  # failures go to stderr
    code, out, err = run("verify", str(foreign), "--json")
    assert code == 1 and json.loads(out)["ok"] is False  # stdout: the JSON object only
    assert "not a backup" in err and len(err.strip().splitlines()) == 1


def test_list_names_the_folder_it_reads_and_finds_a_code_in_any_case(run, sqlite_demo_db,
                                                                    app_paths):
    code, out, err = run("backup", "--db", sqlite_demo_db, "--org", "medp", "--user",
                         "medp.admin")
    assert code == 0, err
    assert "Medplus" in out
    # Progress lines write thousands the way the window does ("1,234 of 5,678 rows").
    progress = [line for line in err.splitlines() if "rows done" in line]
    assert progress and not [line for line in progress if re.search(r"\d{4}", line)]
    assert any(re.search(r"\d,\d{3} rows done", line) for line in progress)
    code, out, err = run("list", "--db", sqlite_demo_db, "--org", "Medp", dir_=False)
    folder = app_paths.default_backup_dir
    assert code == 0, err
    assert out.splitlines()[0].startswith("Backups of Medplus Pharmacy")
    assert out.splitlines()[0].endswith(f"(MEDP) in {folder.resolve()}:")
    # The day's file was written to --dir, not there: the line says where it really is.
    backed_up = next(line for line in out.splitlines() if "Backed up" in line)
    assert backed_up.endswith(f"(in {run.backups})")


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path):
    """`desktop-backup … | head -1`: the reader closes the pipe; the command exits quietly."""
    env = {**os.environ, "DESKTOP_BACKUP_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([sys.executable, "-m", "desktop_backup", "demo", "--path",
                             str(tmp_path / "demo.sqlite")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # before the command has written a line
    err = proc.stderr.read().decode()
    assert proc.wait() == 0
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_the_help_shows_what_a_database_address_looks_like(capsys):
    with pytest.raises(SystemExit):
        main(["backup", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "mysql://user@host/billing" in out and "sqlite:///C:/Billing/billing.db" in out


def test_the_installed_command_and_python_m_agree(tmp_path):
    out = subprocess.run([sys.executable, "-m", "desktop_backup", "--version"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("desktop-backup ")


@pytest.mark.parametrize("dialect", ["mysql"])
def test_a_profile_without_a_saved_password_asks_for_it(run, app_paths, empty_db, monkeypatch,
                                                        capsys):
    """A profile whose password the keyring cannot give: the CLI says why and asks."""
    from keyring.backends.fail import Keyring as NoKeyring
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from desktop_backup.config import Settings, save_settings
    from desktop_backup.demo import load_demo
    from tests.conftest import TEST_SCALE
    from tests.memory_keyring import installed

    admin = create_engine(empty_db)
    name = make_url(empty_db).database
    with admin.begin() as conn:
        conn.exec_driver_sql(
            "CREATE USER IF NOT EXISTS 'shopuser'@'%%' IDENTIFIED BY 's3cret-db'")
        conn.exec_driver_sql(f"GRANT ALL ON {name}.* TO 'shopuser'@'%%'")
    load_demo(admin, scale=TEST_SCALE)
    admin.dispose()
    url = make_url(empty_db).set(username="shopuser").render_as_string(hide_password=False)
    from desktop_backup.config import Profile

    save_settings(app_paths, Settings(profiles={"shop": Profile("shop", url)},
                                      last_profile="shop"))
    try:
        monkeypatch.setenv("DESKTOP_BACKUP_DB_PASSWORD", "s3cret-db")
        with installed(NoKeyring()):
            code, out, err = run("list", "--profile", "shop", "--org", "MEDP")
        assert code == 0, err
        assert "no usable password store" in err and "Backups of Medplus" in out
        monkeypatch.setenv("DESKTOP_BACKUP_DB_PASSWORD", "wrong")
        with installed(NoKeyring()):
            code, out, err = run("list", "--profile", "shop", "--org", "MEDP")
        assert code == 1 and "refused the database user name or password" in err
    finally:
        admin = create_engine(empty_db)
        with admin.begin() as conn:
            conn.exec_driver_sql("DROP USER IF EXISTS 'shopuser'@'%%'")
        admin.dispose()
