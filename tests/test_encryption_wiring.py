"""Encryption at rest wired in: the per-organization setting every workstation shares, and
the use cases that change it (only the organization's admins, audited)."""

from __future__ import annotations

import io
import json
import shutil
import sys
import zipfile
from datetime import datetime
from pathlib import Path

import pyrage
import pytest
from sqlalchemy.engine import make_url

from desktop_backup import usecases
from desktop_backup.archive import read_manifest
from desktop_backup.auth import LoginThrottle
from desktop_backup.backup import run_backup
from desktop_backup.cli import main
from desktop_backup.config import AppPaths, Settings
from desktop_backup.db import open_engine
from desktop_backup.demo import DEMO_PASSWORD
from desktop_backup.encryption import is_age_file, open_decrypted
from desktop_backup.encryption_setting import ENCRYPTION_TABLE, read_encryption
from desktop_backup.errors import DesktopBackupError, KeyringUnavailable, LoginRefused
from desktop_backup.history import ensure_tables, recent
from desktop_backup.keystore import ORG_KEY_SERVICE, org_key_name
from desktop_backup.opening import verify_archive
from desktop_backup.orgkeys import (
    delete_org_key,
    fingerprint,
    load_org_key,
    parse_recovery_text,
    recovery_sheet_text,
)
from desktop_backup.restore import apply_restore, check_restore, list_restore_points
from desktop_backup.tenancy import CONSOLE_TABLES
from desktop_backup.work import Actor, Site
from tests.auth_support import cheap_passwords
from tests.clock import FakeClock
from tests.rclone_servers import Server
from tests.restore_support import org_digest, wipe_and_change

pytest_plugins = ["tests.keyring_fixtures"]

SUPPORT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"  # age's spec example


def log_in(app_paths: AppPaths, url: str, username: str = "medp.admin"):
    return usecases.login(app_paths, Settings(), url, None, None, username, DEMO_PASSWORD,
                          LoginThrottle(app_paths.login_throttle_file))


@pytest.fixture
def admin(app_paths, demo_db, memory_keyring):
    """medp.admin logged in on each dialect's demo database, with a keyring in memory."""
    result = log_in(app_paths, demo_db)
    yield result
    result.engine.dispose()


def site_of(login) -> Site:
    return Site(login.engine, Settings().mapping, FakeClock())


def test_the_setting_is_a_console_table_never_backed_up():
    assert ENCRYPTION_TABLE in CONSOLE_TABLES


def test_turning_encryption_on_stores_public_keys_only_and_audits(admin):
    site, session = site_of(admin), admin.session
    org = session.organization
    turned = usecases.turn_encryption_on(site, session, org, [SUPPORT], trigger="cli")
    identity = load_org_key(org.id)
    assert turned.created and str(identity) in turned.sheet
    stored = read_encryption(site.engine, org.id)
    assert stored.enabled and stored.public_key == str(identity.to_public())
    assert stored.extra_recipients == (SUPPORT,)
    assert stored.changed_by == "medp.admin"
    assert stored.fingerprints() == [fingerprint(stored.public_key), fingerprint(SUPPORT)]
    line = recent(site.engine, ensure_tables(site.engine)[1], org.id)[0]
    assert (line.action, line.outcome, line.username, line.trigger) == (
        "encryption", "success", "medp.admin", "cli")
    assert fingerprint(SUPPORT) in line.message and "new key" in line.message

    again = usecases.turn_encryption_on(site, session, org)  # the key here is kept
    assert not again.created and again.sheet == ""
    assert str(load_org_key(org.id)) == str(identity)

    status = usecases.encryption_status(site, org)
    assert status.enabled and status.key_here
    assert usecases.turn_encryption_off(site, session, org) is True
    assert usecases.turn_encryption_off(site, session, org) is False
    status = usecases.encryption_status(site, org)
    assert not status.enabled and status.public_key == str(identity.to_public())
    assert "off" in status.message and status.fingerprints[0] in status.message


def test_another_organizations_admin_may_not_change_it(admin, app_paths, demo_db):
    other = log_in(app_paths, demo_db, "city.admin")
    try:
        medp = admin.session.organization
        with pytest.raises(LoginRefused, match="cannot back up or restore"):
            usecases.turn_encryption_on(site_of(other), other.session, medp)
        assert read_encryption(admin.engine, medp.id) is None
        # The window's page shows its buttons disabled, with this reason.
        assert "cannot back up or restore" in usecases.change_refused(other.session, medp)
        assert usecases.change_refused(admin.session, medp) is None
    finally:
        other.engine.dispose()


def test_a_workstation_without_the_shops_key_cannot_make_a_second_one(admin):
    site, session = site_of(admin), admin.session
    org = session.organization
    usecases.turn_encryption_on(site, session, org)
    first = read_encryption(site.engine, org.id).public_key
    delete_org_key(org.id)  # as on a second workstation that never imported the sheet
    with pytest.raises(DesktopBackupError, match="import its recovery sheet first"):
        usecases.turn_encryption_on(site, session, org)
    assert read_encryption(site.engine, org.id).public_key == first
    status = usecases.encryption_status(site, org)
    assert status.enabled and not status.key_here


def test_without_a_keyring_encryption_stays_off(app_paths, sqlite_demo_db, unusable_keyring):
    login = log_in(app_paths, sqlite_demo_db)
    try:
        with pytest.raises(KeyringUnavailable):
            usecases.turn_encryption_on(site_of(login), login.session,
                                        login.session.organization)
        assert read_encryption(login.engine, login.session.organization.id) is None
    finally:
        login.engine.dispose()


# --- the write path -------------------------------------------------------------------------

def backup_now(login, folder, **kwargs):
    return run_backup(site_of(login), login.session.organization, Actor.of(login.session),
                      folder, trigger="manual", **kwargs)


def manifest_inside(path, identity):
    with open_decrypted(path, [identity]) as plain, zipfile.ZipFile(plain) as zf:
        return read_manifest(zf)


def test_an_encrypted_backup_replaces_the_plain_slot_and_says_for_whom(admin, tmp_path):
    folder = tmp_path / "backups"
    org = admin.session.organization
    plain = backup_now(admin, folder)
    assert plain.path.name == "org_MEDP_wednesday_backup.zip" and not plain.encrypted
    usecases.turn_encryption_on(site_of(admin), admin.session, org, [SUPPORT])
    identity = load_org_key(org.id)

    made = backup_now(admin, folder, force=True)
    assert made.path.name == "org_MEDP_wednesday_backup.zip.age" and is_age_file(made.path)
    assert not plain.path.exists()  # no clear copy of the weekday is left behind
    assert sorted(p.name for p in folder.iterdir()) == [made.path.name]
    keys = [fingerprint(identity.to_public()), fingerprint(SUPPORT)]
    assert made.recipients == keys and "encrypted for the keys" in made.message
    data = made.path.read_bytes()
    assert org.name.encode() not in data and b"medp.admin" not in data
    manifest = manifest_inside(made.path, identity)
    assert manifest.encryption == {"recipients": keys}
    assert manifest.total_rows == made.rows
    decrypted = pyrage.decrypt(data, [identity])  # what support's age -d does
    with zipfile.ZipFile(io.BytesIO(decrypted)) as zf:
        assert read_manifest(zf).backup_id == manifest.backup_id
    line = recent(admin.engine, ensure_tables(admin.engine)[1], org.id)[0]
    assert (line.action, line.outcome, line.file) == ("backup", "success", str(made.path))
    assert keys[0] in line.message and keys[1] in line.message

    overview = usecases.load_overview(site_of(admin), org.id, folder)
    today = next(day for day in overview.days if day.is_today)
    assert (today.state, today.path) == ("succeeded", str(made.path))

    usecases.turn_encryption_off(site_of(admin), admin.session, org)
    clear = backup_now(admin, folder, force=True)
    assert clear.path.name == "org_MEDP_wednesday_backup.zip" and not clear.encrypted
    assert sorted(p.name for p in folder.iterdir()) == [clear.path.name]


def test_a_workstation_without_the_key_still_makes_checked_encrypted_backups(
        app_paths, sqlite_demo_db, memory_keyring, tmp_path):
    login = log_in(app_paths, sqlite_demo_db)
    try:
        org = login.session.organization
        usecases.turn_encryption_on(site_of(login), login.session, org)
        identity = load_org_key(org.id)
        delete_org_key(org.id)  # the second workstation: public keys from the database only
        made = backup_now(login, tmp_path / "backups")
        assert made.encrypted and made.path.name.endswith(".zip.age")
        assert manifest_inside(made.path, identity).total_rows == made.rows
    finally:
        login.engine.dispose()


def test_the_web_apps_format_is_refused_while_encryption_is_on(
        app_paths, sqlite_demo_db, memory_keyring, tmp_path):
    login = log_in(app_paths, sqlite_demo_db)
    try:
        org = login.session.organization
        usecases.turn_encryption_on(site_of(login), login.session, org)
        with pytest.raises(DesktopBackupError, match="web app's format cannot be"):
            backup_now(login, tmp_path / "backups", fmt="seed")
        assert not list(tmp_path.rglob("*.zip*"))
        # Refused as asked, before anything began: no failed day in the week or history.
        line = recent(login.engine, ensure_tables(login.engine)[1], org.id)[0]
        assert line.action == "encryption"
    finally:
        login.engine.dispose()


# --- the read path --------------------------------------------------------------------------

@pytest.fixture
def cli(app_paths, capsys, monkeypatch, demo_db, memory_keyring):
    """`desktop-backup …` on each dialect's demo database: (exit code, stdout, stderr)."""
    engine = open_engine(demo_db)
    cheap_passwords(engine)  # the demo's hashes cost 12; each login would take 0.25 s
    engine.dispose()
    monkeypatch.setenv("DESKTOP_BACKUP_PASSWORD", DEMO_PASSWORD)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))

    def run_(*args: str):
        code = main([*args], paths=app_paths)
        out, err = capsys.readouterr()
        return code, out, err
    run_.url = demo_db
    run_.paths = app_paths
    return run_


def test_an_encrypted_backup_is_verified_and_restored_from_the_command_line(cli, tmp_path):
    folder = tmp_path / "backups"
    db = ["--db", cli.url]
    who = [*db, "--org", "MEDP", "--user", "medp.admin"]
    login = log_in(cli.paths, cli.url)
    try:
        org = login.session.organization
        usecases.turn_encryption_on(site_of(login), login.session, org)
        before = org_digest(login.engine, org.id)
    finally:
        login.engine.dispose()
    code, out, err = cli("backup", *who, "--dir", str(folder), "--json")
    assert code == 0, err
    made = json.loads(out)
    assert made["encrypted"] and made["path"].endswith("_backup.zip.age")

    code, out, err = cli("verify", made["path"], *db, "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["encrypted"], err
    assert report["recipients"] == made["recipients"]
    assert "It is encrypted for the key" in report["message"]
    code, out, _err = cli("verify", made["path"], "--json")  # no database: no organization
    assert code == 1 and "key this workstation does not have" in json.loads(out)["message"]

    engine = open_engine(cli.url)
    try:
        wipe_and_change(engine)
        assert org_digest(engine, org.id) != before
    finally:
        engine.dispose()
    identity = load_org_key(org.id)
    delete_org_key(org.id)  # a second home folder: the key is not here yet
    code, out, err = cli("restore", made["path"], *who, "--dir", str(folder), "--yes")
    assert code == 1 and "key this workstation does not have" in err
    assert "Traceback" not in err
    sheet = tmp_path / "sheet.txt"
    sheet.write_text(recovery_sheet_text(identity, org, datetime(2026, 12, 2, 9, 0)))
    assert usecases.import_key(org, sheet.read_text()) is True
    code, out, err = cli("restore", made["path"], *who, "--dir", str(folder), "--yes",
                         "--json")
    assert code == 0, err
    restored = json.loads(out)
    assert restored["restored"] is True
    # The data from before is saved encrypted too, and listed for the wizard.
    point = Path(restored["restore_point"])
    assert point.name.endswith(".zip.age") and is_age_file(point)
    assert list_restore_points(folder, org) == [point]
    engine = open_engine(cli.url)
    try:
        assert org_digest(engine, org.id) == before
    finally:
        engine.dispose()


def test_verify_without_the_key_still_says_the_file_is_intact(cli, tmp_path):
    """The history keeps each encrypted backup's SHA-256: a workstation without the key can
    tell the very file the console wrote from a damaged or foreign one."""
    db = ["--db", cli.url]
    login = log_in(cli.paths, cli.url)
    try:
        org = login.session.organization
        usecases.turn_encryption_on(site_of(login), login.session, org)
    finally:
        login.engine.dispose()
    code, out, err = cli("backup", *db, "--org", "MEDP", "--user", "medp.admin", "--dir",
                         str(tmp_path / "backups"), "--json")
    assert code == 0, err
    made = Path(json.loads(out)["path"])
    delete_org_key(org.id)  # another workstation: no key here

    code, out, _err = cli("verify", str(made), *db, "--json")
    report = json.loads(out)
    assert code == 1 and not report["ok"] and report["encrypted"]
    assert report["message"].startswith(
        f"{made.name} is intact: it is the very file the console wrote on ")
    weekday = made.name.split("_")[2].capitalize()  # the day the CLI ran: its slot's name
    assert f"{weekday}'s backup" in report["message"] and "key import" in report["message"]

    flipped = tmp_path / made.name
    data = bytearray(made.read_bytes())
    data[len(data) // 2] ^= 0x01
    flipped.write_bytes(bytes(data))
    code, out, _err = cli("verify", str(flipped), *db, "--json")
    assert code == 1 and "intact" not in json.loads(out)["message"]
    assert "key this workstation does not have" in json.loads(out)["message"]



# --- the command line -----------------------------------------------------------------------

class _Terminal(io.StringIO):
    """Standard input that is a terminal, with the user's answers typed in."""

    def isatty(self) -> bool:
        return True


def test_encryption_on_status_off_and_the_key_from_the_command_line(cli, tmp_path,
                                                                    monkeypatch):
    who = ["--db", cli.url, "--org", "MEDP", "--user", "medp.admin"]
    sheet = tmp_path / "sheet.txt"
    code, out, err = cli("encryption", "on", *who, "--recovery-file", str(sheet),
                         "--recipient", SUPPORT, "--json")
    assert code == 0, err
    turned = json.loads(out)
    assert turned["created"] and turned["fingerprints"][1] == fingerprint(SUPPORT)
    assert oct(sheet.stat().st_mode & 0o777) == "0o600"
    assert "AGE-SECRET-KEY-1" not in out + err  # the secret went to the file only
    assert "without it an encrypted backup cannot be opened" in turned["message"]

    code, out, err = cli("encryption", "status", *who, "--json")
    status = json.loads(out)
    assert code == 0 and status["enabled"] and status["key_here"], err
    assert status["fingerprints"] == turned["fingerprints"]

    code, out, err = cli("key", "export", "--db", cli.url, "--org", "MEDP", "--out",
                         str(tmp_path / "again.txt"))
    assert code == 0, err
    again = parse_recovery_text((tmp_path / "again.txt").read_text()).identity
    assert str(again.to_public()) == status["public_key"]
    delete_org_key(1)
    code, out, err = cli("encryption", "status", *who, "--json")
    assert not json.loads(out)["key_here"]
    code, out, err = cli("key", "import", str(sheet), "--db", cli.url, "--org", "MEDP")
    assert code == 0 and "now on this workstation" in out, err
    code, out, err = cli("key", "import", str(sheet), "--db", cli.url, "--org", "CITY")
    assert code == 1 and "belongs to organization 1" in err

    monkeypatch.setattr(sys, "stdin", _Terminal(f"{DEMO_PASSWORD}\nno\n"))
    code, out, err = cli("encryption", "off", *who)
    assert code == 0 and "stays on" in out
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code, out, err = cli("encryption", "off", *who)  # no terminal: a script asked for it
    assert code == 0 and "written in clear from now on" in out, err
    code, out, err = cli("encryption", "status", *who)
    assert "is off" in out


def test_without_a_recovery_file_the_sheet_is_printed_and_retyped(cli, monkeypatch):
    who = ["--db", cli.url, "--org", "MEDP", "--user", "medp.admin"]
    monkeypatch.setattr(sys, "stdin", _Terminal(f"{DEMO_PASSWORD}\n"))
    code, out, err = cli("encryption", "on", *who, "--recipient", "age1nonsense")
    assert code == 1 and "is not an age public key" in err
    assert load_org_key(1) is None  # nothing was made for a refused command
    monkeypatch.setattr(sys, "stdin", _Terminal(f"{DEMO_PASSWORD}\nwrong\n"))
    code, out, err = cli("encryption", "on", *who)
    assert code == 0, err
    key = str(load_org_key(1))
    assert key in out and "Print or save this now" in err
    assert "not confirmed" in err  # the one answer typed was wrong, then input ended
    monkeypatch.setattr(sys, "stdin", _Terminal(f"{DEMO_PASSWORD}\n{key[-6:].lower()}\n"))
    code, out, err = cli("encryption", "on", *who)  # on again: the key here, no new sheet
    assert code == 0 and "key already on this workstation" in out and key not in out
    monkeypatch.setattr(sys, "stdin", _Terminal(f"{DEMO_PASSWORD}\nyes\n"))
    code, out, err = cli("encryption", "off", *who)
    assert code == 0 and "written in clear" in out, err


# --- off-site ---------------------------------------------------------------------------------

def test_only_the_encrypted_file_goes_off_site_and_comes_back(cli, tmp_path):
    server = Server("folder", tmp_path / "server").start()
    try:
        who = ["--db", cli.url, "--org", "MEDP", "--user", "medp.admin"]
        folder = ["--dir", str(tmp_path / "backups")]
        assert cli("offsite", "set", server.remote, *who)[0] == 0
        code, out, err = cli("backup", *who, *folder, "--json")  # in clear, sent
        assert code == 0, err
        name = f"org_MEDP_{json.loads(out)['weekday']}_backup.zip"  # the CLI's own today
        shop = server.shop / "org_1_MEDP"
        assert [p.name for p in shop.iterdir()] == [name]

        sheet = tmp_path / "sheet.txt"
        assert cli("encryption", "on", *who, "--recovery-file", str(sheet))[0] == 0
        code, out, err = cli("backup", *who, *folder, "--force", "--json")
        made = json.loads(out)
        assert code == 0 and made["offsite"]["sent"] == [made["weekday"]], err
        # Only the encrypted file is off-site: the clear copy of the weekday went too.
        assert [p.name for p in shop.iterdir()] == [f"{name}.age"]
        assert (shop / f"{name}.age").read_bytes() == \
            Path(made["path"]).read_bytes()

        delete_org_key(1)  # a fresh workstation: it imports the sheet, then pulls
        assert cli("key", "import", str(sheet), "--db", cli.url, "--org", "MEDP")[0] == 0
        code, out, err = cli("offsite", "pull", "--day", made["weekday"], *who, "--dir",
                             str(tmp_path / "pulled"), "--json")
        assert code == 0, err
        pulled = json.loads(out)
        assert pulled["path"].endswith(f"{name}.age")
        code, out, err = cli("restore", pulled["path"], *who, *folder, "--yes", "--json")
        assert code == 0 and json.loads(out)["ok"], err
    finally:
        server.stop()


def test_encrypted_restore_points_are_pruned_when_the_key_is_here(
        app_paths, sqlite_demo_db, memory_keyring, tmp_path):
    login = log_in(app_paths, sqlite_demo_db)
    try:
        site, org, actor = site_of(login), login.session.organization, Actor.of(login.session)
        usecases.turn_encryption_on(site, login.session, org)
        folder = tmp_path / "backups"
        made = backup_now(login, folder)
        points = []
        for _ in range(2):
            wipe_and_change(login.engine)
            plan = check_restore(site, org, made.path, restorer=actor)
            assert plan.ok, plan.message
            result = apply_restore(site, org, plan, actor, folder, restore_points_kept=1)
            points.append(result.restore_point)
        assert all(p.name.endswith(".zip.age") for p in points)
        assert list_restore_points(folder, org) == [points[1]]  # the older one was pruned
    finally:
        login.engine.dispose()


# --- loose ends: support's keys kept, the key's moves audited, the sheet confirmed ------------

def _audit_lines(url: str, org_id: int) -> list:
    engine = open_engine(url)
    try:
        return recent(engine, ensure_tables(engine)[1], org_id)
    finally:
        engine.dispose()


def test_turning_encryption_on_again_keeps_supports_key_unless_told(cli, tmp_path):
    who = ["--db", cli.url, "--org", "MEDP", "--user", "medp.admin"]
    code, out, err = cli("encryption", "on", *who, "--recovery-file", str(tmp_path / "s.txt"),
                         "--recipient", SUPPORT, "--json")
    assert code == 0, err
    code, out, err = cli("encryption", "on", *who, "--json")
    assert code == 0 and json.loads(out)["fingerprints"][1:] == [fingerprint(SUPPORT)], err
    code, out, err = cli("encryption", "on", *who, "--no-recipients", "--json")
    assert code == 0 and len(json.loads(out)["fingerprints"]) == 1, err
    with pytest.raises(SystemExit) as usage:
        cli("encryption", "on", *who, "--no-recipients", "--recipient", SUPPORT)
    assert usage.value.code == 2


def test_importing_and_exporting_the_key_is_audited(cli, tmp_path):
    who = ["--db", cli.url, "--org", "MEDP", "--user", "medp.admin"]
    sheet = tmp_path / "sheet.txt"
    assert cli("encryption", "on", *who, "--recovery-file", str(sheet))[0] == 0
    key = ["--db", cli.url, "--org", "MEDP"]
    assert cli("key", "export", *key, "--out", str(tmp_path / "again.txt"))[0] == 0
    delete_org_key(1)
    assert cli("key", "import", str(sheet), *key)[0] == 0
    lines = _audit_lines(cli.url, 1)
    imported, exported = lines[0], lines[1]
    assert (imported.action, imported.trigger) == ("encryption", "cli")
    assert "imported on this workstation" in imported.message
    assert "written to" in exported.message and str(tmp_path / "again.txt") in exported.message
    assert "AGE-SECRET-KEY" not in imported.message + exported.message
    code, _out, err = cli("key", "import", str(sheet), "--db", cli.url, "--org", "CITY")
    assert code == 1 and _audit_lines(cli.url, 2) == []  # refused: nothing recorded


def test_the_header_warns_until_the_sheet_is_retyped(admin):
    site, session = site_of(admin), admin.session
    org = session.organization
    usecases.turn_encryption_on(site, session, org)
    assert usecases.SHEET_NOT_CONFIRMED in usecases.load_overview(
        site, org.id, Path("/nonexistent")).warnings
    key = str(load_org_key(org.id))
    assert usecases.confirm_sheet(site, session, org, "XXXXXX") is False
    assert not usecases.encryption_status(site, org).sheet_confirmed
    assert usecases.confirm_sheet(site, session, org, key[-6:].lower()) is True
    assert usecases.encryption_status(site, org).sheet_confirmed
    assert usecases.SHEET_NOT_CONFIRMED not in usecases.load_overview(
        site, org.id, Path("/nonexistent")).warnings
    delete_org_key(org.id)  # a new key (after the old one was lost) needs its own sheet
    usecases.turn_encryption_off(site, session, org)
    usecases.turn_encryption_on(site, session, org)
    assert usecases.SHEET_NOT_CONFIRMED in usecases.load_overview(
        site, org.id, Path("/nonexistent")).warnings


# --- two billing databases on one workstation, each with an organization 1 -----------------

@pytest.fixture
def two_shops(app_paths, sqlite_demo_db, memory_keyring, tmp_path):
    """medp.admin logged in to two copies of the demo database (two shops whose
    organization is 1 in each), with one keyring."""
    second = tmp_path / "second" / "billing.sqlite"
    second.parent.mkdir()
    shutil.copyfile(make_url(sqlite_demo_db).database, second)
    logins = [log_in(app_paths, sqlite_demo_db), log_in(app_paths, f"sqlite:///{second}")]
    yield logins
    for login in logins:
        login.engine.dispose()


def test_two_databases_with_the_same_organization_id_keep_their_own_keys(two_shops, tmp_path):
    first, second = two_shops
    org = first.session.organization
    assert second.session.organization.id == org.id == 1
    usecases.turn_encryption_on(site_of(first), first.session, org)
    turned = usecases.turn_encryption_on(site_of(second), second.session,
                                         second.session.organization)
    assert turned.created  # its own key, not refused for the other database's
    keys = [read_encryption(login.engine, 1).public_key for login in two_shops]
    assert keys[0] != keys[1]
    for login in two_shops:
        assert usecases.encryption_status(site_of(login), login.session.organization).key_here
        made = backup_now(login, tmp_path / f"backups-{two_shops.index(login)}")
        assert verify_archive(made.path, None, [1]).ok  # opened with the key that fits


def test_a_key_kept_before_keys_were_named_by_database_goes_to_its_own(
        two_shops, memory_keyring):
    first, second = two_shops
    usecases.turn_encryption_on(site_of(first), first.session, first.session.organization)
    key = load_org_key(1)
    usecases.turn_encryption_on(site_of(second), second.session, second.session.organization)
    delete_org_key(1)
    memory_keyring.passwords[(ORG_KEY_SERVICE, org_key_name(1))] = str(key)  # as kept before
    status = usecases.encryption_status(site_of(second), second.session.organization)
    assert not status.key_here  # the other database's key is not taken for this one
    status = usecases.encryption_status(site_of(first), first.session.organization)
    assert status.key_here
    assert json.loads(memory_keyring.passwords[(ORG_KEY_SERVICE, org_key_name(1))])["keys"][0][
        "database"]  # named from then on
