"""Off-site copies through rclone, against real servers (`rclone serve s3|sftp|webdav`) and a
folder: verified uploads after the backup, secrets only in the keyring, offline queueing,
exactly one uploader, and a restore from the remote on a fresh workstation."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from desktop_backup.cli import main
from desktop_backup.config import AppPaths
from desktop_backup.db import open_engine
from desktop_backup.demo import DEMO_PASSWORD
from desktop_backup.offsite import (
    TEMP_MARK,
    OffsiteError,
    Rclone,
    download_to,
    local_hashes,
    parse_remote,
    redact_remote,
    same_content,
    upload_verified,
)
from desktop_backup.work import Cancelled
from tests.rclone_servers import KINDS, SECRET, Server

pytest_plugins = ["tests.keyring_fixtures"]
LOGIN = ("--org", "MEDP", "--user", "medp.admin")


@pytest.fixture
def server(request, tmp_path):
    srv = Server(getattr(request, "param", "s3"), tmp_path / "server").start()
    yield srv
    srv.stop()


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path, memory_keyring):
    """Run the CLI as a workstation: cli(*argv, home="a") with its own app folders."""
    monkeypatch.setenv("DESKTOP_BACKUP_PASSWORD", DEMO_PASSWORD)

    def run(*argv: str, home: str = "a"):
        root = tmp_path / f"home-{home}"
        paths = AppPaths(root / "config", root / "data", root / "logs")
        paths.data_dir.mkdir(parents=True, exist_ok=True)
        code = main(list(argv), paths=paths)
        out, err = capsys.readouterr()
        return code, (json.loads(out) if "--json" in argv and out else out), err
    return run


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _slot_files(server: Server) -> list[Path]:
    return [p for p in server.shop.rglob("*") if p.is_file()] if server.shop.exists() else []


def test_a_connection_string_is_split_into_address_and_secrets():
    remote, secrets = parse_remote(
        ":s3,provider=Minio,endpoint='http://h:9000',access_key_id=AK,"
        "secret_access_key='se,c:ret':bucket/shop")
    assert remote.address == ":s3,provider=Minio,endpoint='http://h:9000':bucket/shop"
    assert secrets == {"access_key_id": "AK", "secret_access_key": "se,c:ret"}
    assert remote.env_name("secret_access_key") == "RCLONE_S3_SECRET_ACCESS_KEY"
    named, none = parse_remote("gdrive:Backups/shop")
    assert (named.kind, named.name, none) == ("named", "gdrive", {})
    assert named.env_name("token") == "RCLONE_CONFIG_GDRIVE_TOKEN"
    assert parse_remote(r"\\nas\backups")[0].kind == "local"
    assert parse_remote("C:\\Backups")[0].kind == "local"
    assert "se,c" not in redact_remote(":s3,secret_access_key='se,c:ret',region=x:b")


@pytest.mark.parametrize("server", KINDS, indirect=True)
def test_each_backup_goes_off_site_checked_and_comes_back_on_a_fresh_workstation(
        cli, server, sqlite_demo_db, tmp_path):
    code, out, err = cli("offsite", "set", server.remote, "--db", sqlite_demo_db, *LOGIN)
    assert code == 0, err
    code, result, err = cli("backup", "--db", sqlite_demo_db, *LOGIN, "--json")
    assert code == 0, err
    local = Path(result["path"])
    assert result["offsite"]["sent"] == [result["weekday"]]
    remote_file = server.shop / "org_1_MEDP" / local.name
    assert _sha(remote_file) == _sha(local)
    assert [p.name for p in _slot_files(server)] == [local.name]  # no temporary left over

    # The next backup of the day replaces the remote copy, checked again.
    code, result, _ = cli("backup", "--db", sqlite_demo_db, *LOGIN, "--force", "--json")
    assert code == 0 and result["offsite"]["sent"] == [result["weekday"]]
    assert _sha(remote_file) == _sha(local)

    code, status, _ = cli("offsite", "status", "--db", sqlite_demo_db, *LOGIN, "--json")
    day = next(d for d in status["days"] if d["weekday"] == result["weekday"])
    assert day["status"] == "copied" and day["copied_at"] and status["last_copied"]
    assert status["stored"][result["weekday"]]["size"] == local.stat().st_size
    code, listing, _ = cli("list", "--db", sqlite_demo_db, "--org", "MEDP", "--json")
    uploads = [e for e in listing["audit"] if e["action"] == "upload"]
    assert len(uploads) == 2 and all(e["outcome"] == "success" for e in uploads)

    # After the disaster: a fresh workstation with only the remote's address and secret,
    # and the shop's customers lost.
    local.unlink()
    engine = open_engine(sqlite_demo_db)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM customer_ledgers WHERE organization_id = 1")
    engine.dispose()
    code, _, err = cli("offsite", "set", server.remote, "--db", sqlite_demo_db, *LOGIN,
                       home="fresh")
    assert code == 0, err
    code, pulled, err = cli("offsite", "pull", "--day", result["weekday"], "--db",
                            sqlite_demo_db, *LOGIN, "--json", home="fresh")
    assert code == 0, err
    assert _sha(Path(pulled["path"])) == _sha(remote_file)
    assert Path(pulled["path"]).stat().st_mode & 0o077 == 0
    code, restored, err = cli("restore", pulled["path"], "--db", sqlite_demo_db, *LOGIN,
                              "--yes", "--json", home="fresh")
    assert code == 0 and restored["ok"] and restored["rows"] > 0, err
    assert restored["changes"]["brought_back"] == 350  # the lost ledger rows came back


@pytest.mark.parametrize("server", ["s3", "sftp"], indirect=True)
def test_the_secret_is_in_the_keyring_only(cli, server, sqlite_demo_db, tmp_path,
                                           memory_keyring):
    code, out, err = cli("offsite", "set", server.remote, "--db", sqlite_demo_db, *LOGIN)
    assert code == 0, err
    assert SECRET not in out
    cli("backup", "--db", sqlite_demo_db, *LOGIN)
    home = tmp_path / "home-a"
    for path in home.rglob("*"):
        if path.is_file() and path.suffix != ".zip":
            assert SECRET not in path.read_text(errors="replace"), path
    settings = json.loads((home / "config" / "settings.json").read_text())
    assert settings["offsite_remotes"]["1"].endswith(":shop") or "bucket/shop" in \
        settings["offsite_remotes"]["1"]
    assert any(SECRET in v for v in memory_keyring.passwords.values())
    # Another workstation's settings name the remote, but its keyring lacks the keys.
    memory_keyring.passwords.clear()
    code, out, err = cli("offsite", "push", "--db", sqlite_demo_db, *LOGIN)
    assert code == 1 and "keys are not in this computer's password store" in err
    code, out, _ = cli("offsite", "set", server.remote, "--db", sqlite_demo_db, *LOGIN)
    code, out, _ = cli("offsite", "off", "--db", sqlite_demo_db, *LOGIN)
    assert code == 0 and not any(SECRET in v for v in memory_keyring.passwords.values())


@pytest.mark.parametrize("server", ["s3", "sftp", "webdav"], indirect=True)
def test_wrong_keys_are_one_sentence_and_nothing_is_kept(cli, server, sqlite_demo_db,
                                                        tmp_path):
    code, _, err = cli("offsite", "set", server.remote_with("wrong-secret"), "--db",
                       sqlite_demo_db, *LOGIN)
    assert code == 1 and "refused the keys or password" in err
    assert len(err.strip().splitlines()) == 1 and "wrong-secret" not in err
    code, status, _ = cli("offsite", "status", "--db", sqlite_demo_db, *LOGIN, "--json")
    assert status["remote"] is None


def test_a_bucket_that_does_not_exist_is_named(cli, server, sqlite_demo_db):
    code, _, err = cli("offsite", "set", server.remote.replace(":bucket/", ":nobucket/"),
                       "--db", sqlite_demo_db, *LOGIN)
    assert code == 1 and "no such bucket or folder" in err


def test_server_down_during_the_backup_then_push(cli, server, demo_db):
    """On every dialect: the queue is a console table in the billing database."""
    assert cli("offsite", "set", server.remote, "--db", demo_db, *LOGIN)[0] == 0
    server.stop()
    code, result, err = cli("backup", "--db", demo_db, *LOGIN, "--json")
    assert code == 0 and result["ok"] and Path(result["path"]).is_file(), err
    assert "cannot be reached" in result["offsite"]["failed"][result["weekday"]]
    code, status, _ = cli("offsite", "status", "--db", demo_db, *LOGIN, "--json")
    day = next(d for d in status["days"] if d["weekday"] == result["weekday"])
    assert day["status"] == "failed" and day["next_try_at"] and "cannot be reached" in day["error"]
    assert code == 0 and "cannot be reached" in status["stored_error"]
    server.start()
    code, pushed, err = cli("offsite", "push", "--db", demo_db, *LOGIN, "--json")
    assert code == 0 and pushed["sent"] == [result["weekday"]], err
    assert _sha(server.shop / "org_1_MEDP" / Path(result["path"]).name) == \
        _sha(Path(result["path"]))


@pytest.mark.parametrize("server", ["s3", "sftp"], indirect=True)
def test_a_server_killed_mid_upload_leaves_no_file_under_the_slot_name(
        cli, server, sqlite_demo_db, monkeypatch):
    assert cli("offsite", "set", server.remote, "--db", sqlite_demo_db, *LOGIN)[0] == 0
    server.stop()
    code, result, _ = cli("backup", "--db", sqlite_demo_db, *LOGIN, "--json")
    local = Path(result["path"])
    server.start()
    # rclone reads its flags from RCLONE_* variables: the upload takes about six seconds.
    monkeypatch.setenv("RCLONE_BWLIMIT", f"{max(local.stat().st_size // 6, 4096)}B")
    outcome: dict = {}
    pushing = threading.Thread(target=lambda: outcome.update(
        r=cli("offsite", "push", "--db", sqlite_demo_db, *LOGIN, "--json")))
    pushing.start()
    time.sleep(2.0)  # about a third of the way through the slowed upload
    server.stop()
    pushing.join(60)
    assert outcome["r"][0] == 1 and outcome["r"][1]["failed"]
    slot = server.shop / "org_1_MEDP" / local.name
    assert not slot.exists()
    monkeypatch.delenv("RCLONE_BWLIMIT")
    server.start()
    code, pushed, err = cli("offsite", "push", "--db", sqlite_demo_db, *LOGIN, "--json")
    assert code == 0 and pushed["sent"] == [result["weekday"]], err
    assert _sha(slot) == _sha(local)


def test_exactly_one_workstation_uploads_a_backup(cli, server, demo_db):
    for home in ("a", "b"):
        assert cli("offsite", "set", server.remote, "--db", demo_db, *LOGIN,
                   home=home)[0] == 0
    server.stop()
    code, made, _ = cli("backup", "--db", demo_db, *LOGIN, "--json", home="a")
    code, other, _ = cli("backup", "--db", demo_db, *LOGIN, "--json", home="b")
    assert other["skipped"] and "offsite" not in other  # the day's claim went to "a"
    server.start()
    results: list = []
    pushers = [threading.Thread(target=lambda home=home: results.append(cli(
        "offsite", "push", "--db", demo_db, *LOGIN, "--json", home=home)))
        for home in ("a", "b", "a")]
    for t in pushers:
        t.start()
    for t in pushers:
        t.join(60)
    assert _sha(server.shop / "org_1_MEDP" / Path(made["path"]).name) == \
        _sha(Path(made["path"]))
    code, listing, _ = cli("list", "--db", demo_db, "--org", "MEDP", "--json")
    uploads = [e for e in listing["audit"] if e["action"] == "upload" and
               e["outcome"] == "success"]
    assert len(uploads) == 1


def test_a_remote_file_of_another_organization_is_refused(cli, server, sqlite_demo_db,
                                                          tmp_path):
    assert cli("offsite", "set", server.remote, "--db", sqlite_demo_db, *LOGIN)[0] == 0
    code, city, _ = cli("backup", "--db", sqlite_demo_db, "--org", "CITY", "--user",
                        "city.admin", "--json")
    code, medp, _ = cli("backup", "--db", sqlite_demo_db, *LOGIN, "--json")
    target = server.shop / "org_1_MEDP" / Path(medp["path"]).name
    target.write_bytes(Path(city["path"]).read_bytes())  # someone swapped the file
    out_dir = tmp_path / "pulled"
    code, _, err = cli("offsite", "pull", "--day", medp["weekday"], "--dir", str(out_dir),
                       "--db", sqlite_demo_db, *LOGIN)
    assert code == 1 and "belongs to another organization" in err
    assert not out_dir.exists() or not [p for p in out_dir.iterdir()]
    assert not any(TEMP_MARK in p.name for p in _slot_files(server))


def test_a_copy_that_differs_from_the_local_file_does_not_count(tmp_path):
    """The check after upload compares the remote's own hash (or a read-back) with ours."""
    local = tmp_path / "org_X_monday_backup.zip"
    local.write_bytes(b"the backup" * 1000)
    remote_dir = tmp_path / "remote"
    remote_dir.mkdir()
    (remote_dir / local.name).write_bytes(b"the backuq" * 1000)  # one byte off, same size
    rc = Rclone(parse_remote(str(remote_dir))[0])
    hashes = {"sha256": _sha(local), "md5": hashlib.md5(local.read_bytes()).hexdigest()}
    assert not same_content(rc, rc.remote.join(local.name), hashes)
    (remote_dir / local.name).write_bytes(local.read_bytes())
    assert same_content(rc, rc.remote.join(local.name), hashes)


def test_a_stopped_download_ends_rclone_and_keeps_nothing(tmp_path):
    """The restore wizard's "Stop the download": rclone is ended soon after the flag is set,
    even while the server says nothing, and no temporary file stays behind."""
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        rc = Rclone(*parse_remote(f":s3,provider=Other,endpoint='http://127.0.0.1:{port}',"
                                  f"access_key_id=k,secret_access_key={SECRET}:bucket/shop"))
        stop = threading.Event()
        threading.Timer(0.5, stop.set).start()
        started = time.monotonic()
        with pytest.raises(Cancelled, match="The download was stopped; nothing was kept."):
            download_to(rc, rc.remote.join("org_1_MEDP", "x.zip"), tmp_path / "x.zip", stop)
    assert time.monotonic() - started < 10  # rclone alone would wait 15 s to connect
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("server", ["s3", "sftp", "webdav"], indirect=True)
def test_an_upload_and_a_download_report_their_bytes_as_they_go(server, tmp_path,
                                                                 monkeypatch):
    """The tray, the day card and the wizard show a percent while a copy travels."""
    local = tmp_path / "org_1_MEDP_monday_backup.zip"
    local.write_bytes(os.urandom(3 << 20))
    size = local.stat().st_size
    monkeypatch.setenv("RCLONE_BWLIMIT", "1M")  # about three seconds each way
    rc = Rclone(*parse_remote(server.remote))
    sent: list[tuple[int, int]] = []
    upload_verified(rc, local, "org_1_MEDP", _sha(local),
                    progress=lambda done, total: sent.append((done, total)))
    received: list[tuple[int, int]] = []
    back = download_to(rc, rc.remote.join("org_1_MEDP", local.name), tmp_path / "back.zip",
                       progress=lambda done, total: received.append((done, total)))
    assert _sha(back) == _sha(local)
    for seen in (sent, received):
        done = [d for d, _ in seen]
        assert len(set(done)) >= 3 and done == sorted(done), seen  # several steps, rising
        assert 0 < done[0] < size and seen[-1] == (size, size)
        assert {total for _, total in seen} == {size}


def test_a_failed_transfer_keeps_the_secret_out_of_its_sentence_and_the_log(
        server, tmp_path, caplog):
    """Transfers run rclone with its debug log (for the hash it checked), which would echo
    the keys it read from its environment: none of it may reach the sentence or our log."""
    local = tmp_path / "org_1_MEDP_monday_backup.zip"
    local.write_bytes(b"backup" * 1000)
    rc = Rclone(*parse_remote(server.remote_with("wrong-secret-4711")))
    with caplog.at_level(logging.DEBUG), pytest.raises(OffsiteError) as failed:
        upload_verified(rc, local, "org_1_MEDP", _sha(local))
    assert "refused the keys or password" in str(failed.value)
    assert "wrong-secret-4711" not in caplog.text and "shop-key-id" not in caplog.text
    assert "rclone copyto failed" in caplog.text  # the failure itself is logged


def test_a_file_that_changed_after_its_check_does_not_count_and_old_temporaries_go(tmp_path):
    """The upload's check ties the copy to the file whose hashes the push read: a file
    replaced since (a newer backup) fails the check. Temporaries that killed uploads left,
    rclone's and ours, are swept once they are two hours old."""
    local = tmp_path / "org_1_MEDP_monday_backup.zip"
    local.write_bytes(b"the queued backup" * 1000)
    queued = local_hashes(local)
    folder = tmp_path / "remote" / "org_1_MEDP"
    folder.mkdir(parents=True)
    leftovers = [folder / f"{local.name}.0badf00d{TEMP_MARK}",
                 folder / f".{local.name}.1a2b3c4d{TEMP_MARK}"]
    three_hours_ago = time.time() - 3 * 3600
    for left in leftovers:
        left.write_bytes(b"half")
        os.utime(left, (three_hours_ago, three_hours_ago))
    rc = Rclone(parse_remote(str(tmp_path / "remote"))[0])

    local.write_bytes(b"a newer backup!!!" * 1000)  # same size, other bytes
    with pytest.raises(OffsiteError, match="did not match the local file"):
        upload_verified(rc, local, "org_1_MEDP", queued["sha256"], known=queued)
    assert not any(left.exists() for left in leftovers)

    upload_verified(rc, local, "org_1_MEDP", _sha(local), known=local_hashes(local))
    assert sorted(p.name for p in folder.iterdir()) == [local.name]
    assert _sha(folder / local.name) == _sha(local)
