"""Encrypted backups: age files a thief cannot read, that this console, pyrage and age open."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tracemalloc
import zipfile
from datetime import datetime
from pathlib import Path

import pyrage
import pytest
from pyrage import x25519

from desktop_backup.archive import (
    MANIFEST,
    MAX_MANIFEST_BYTES,
    check_members,
    iter_batches,
    read_manifest,
)
from desktop_backup.authenticity import AUTHENTIC, archive_key, judge
from desktop_backup.backup import run_backup, slot_filename
from desktop_backup.config import SchemaMapping
from desktop_backup.db import open_engine
from desktop_backup.encryption import (
    AGE_MAGIC,
    SCRATCH_NAME,
    EncryptedFileDamaged,
    EncryptingWriter,
    KeyMissing,
    NotEncrypted,
    encrypted_name,
    is_age_file,
    is_encrypted_name,
    open_decrypted,
    plain_name,
)
from desktop_backup.errors import DesktopBackupError, KeyringUnavailable
from desktop_backup.keystore import ORG_KEY_SERVICE, org_key_name
from desktop_backup.organizations import find_organization
from desktop_backup.orgkeys import (
    RETYPE_CHARS,
    InvalidKey,
    KeyAlreadyPresent,
    create_org_key,
    delete_org_key,
    ensure_org_key,
    fingerprint,
    import_org_key,
    load_org_key,
    parse_recipient,
    parse_recovery_text,
    recipients_for,
    recovery_sheet_text,
    retyped_correctly,
)
from desktop_backup.work import Actor, Site
from tests.archives import archive_rows
from tests.clock import FakeClock

pytest_plugins = ["tests.keyring_fixtures"]

MAPPING = SchemaMapping()
ADMIN = Actor(3, "medp.admin")
ODD_WRITE = 7919  # a prime: writes that never line up with age's 64 KiB blocks


@pytest.fixture
def identity() -> x25519.Identity:
    return x25519.Identity.generate()


@pytest.fixture
def scratch(tmp_path) -> Path:
    """The reader's scratch parent, watched by the tests (the default is the temp folder)."""
    path = tmp_path / "scratch"
    path.mkdir()
    return path


def backup_of(url: str, folder: Path):
    """A real backup of MEDP made by the backup engine: (path, engine's archive key, org)."""
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            org = find_organization(conn, MAPPING, "MEDP")
        result = run_backup(Site(engine, MAPPING, FakeClock()), org, ADMIN, folder,
                            trigger="cli")
        return result.path, archive_key(engine), org
    finally:
        engine.dispose()


def encrypt_file(plain: Path, recipients, target: Path) -> Path:
    """Stream `plain` through the encrypting writer in odd-sized writes."""
    with open(plain, "rb") as source, open(target, "wb") as out, \
            EncryptingWriter(out, recipients) as writer:
        while chunk := source.read(ODD_WRITE):
            writer.write(chunk)
    return target


def checked_rows(zf: zipfile.ZipFile) -> dict[str, list[list]]:
    """What `verify` checks, on an open zip: members, manifest, every row with its
    checksum and count (archive.iter_batches raises on any mismatch)."""
    check_members(zf.infolist())
    manifest = read_manifest(zf)
    return {entry.name: [row for batch in iter_batches(zf, entry) for row in batch]
            for entry in manifest.tables}


def rows_as_lists(path: Path) -> dict[str, list[list]]:
    return {name: [list(row.values()) for row in rows]
            for name, rows in archive_rows(path).items()}


# --- round trip --------------------------------------------------------------------------

def test_a_real_backup_round_trips_through_age(demo_db, tmp_path, identity, scratch):
    plain, key, org = backup_of(demo_db, tmp_path / "backups")
    target = tmp_path / encrypted_name(plain.name)
    encrypt_file(plain, [identity.to_public()], target)

    data = target.read_bytes()
    assert data.startswith(AGE_MAGIC) and is_age_file(target) and not is_age_file(plain)
    # The zip's own clear text (member names, in every local header) is gone.
    assert b"tables/customers.jsonl" in plain.read_bytes()
    assert b"tables/customers.jsonl" not in data and b"manifest.json" not in data
    assert pyrage.decrypt(data, [identity]) == plain.read_bytes()

    with open_decrypted(target, [identity], scratch_parent=scratch) as reader, \
            zipfile.ZipFile(reader) as zf:
        assert checked_rows(zf) == rows_as_lists(plain)
        assert judge(zf, MANIFEST, key, MAX_MANIFEST_BYTES).state == AUTHENTIC
        assert read_manifest(zf).organization["id"] == org.id
    assert list(scratch.iterdir()) == []


def test_the_archive_writer_streams_a_zip_straight_into_age(sqlite_demo_db, tmp_path,
                                                            identity, scratch):
    """zipfile writes into the (non-seekable) encrypting stream; stored, not deflated, so the
    rows are in clear inside the age file's plaintext and must not be in the file."""
    plain, _key, _org = backup_of(sqlite_demo_db, tmp_path / "backups")
    target = tmp_path / "streamed.zip.age"
    with zipfile.ZipFile(plain) as source, open(target, "wb") as out, \
            EncryptingWriter(out, [identity.to_public()]) as writer, \
            zipfile.ZipFile(writer, "w", compression=zipfile.ZIP_STORED) as zf:
        for info in source.infolist():
            with source.open(info) as member, zf.open(info.filename, "w",
                                                      force_zip64=True) as copy:
                shutil.copyfileobj(member, copy, ODD_WRITE)

    clear = pyrage.decrypt(target.read_bytes(), [identity])
    secrets = {row["password"].encode() for row in archive_rows(plain)["users"]}
    customers = {row["name"].encode() for row in archive_rows(plain)["customers"]}
    assert secrets and customers
    assert all(value in clear for value in secrets | customers)
    data = target.read_bytes()
    assert not any(value in data for value in secrets | customers)
    with open_decrypted(target, [identity], scratch_parent=scratch) as reader:
        scratch_file = next(scratch.glob(f"*/{SCRATCH_NAME}"))
        assert stat.S_IMODE(scratch_file.stat().st_mode) == 0o600
        on_disk = scratch_file.read_bytes()
        assert len(on_disk) == len(clear)
        assert not any(value in on_disk for value in secrets | customers)
        with zipfile.ZipFile(reader) as zf:
            assert checked_rows(zf) == rows_as_lists(plain)
        reader.seek(12345)
        assert reader.read(70000) == clear[12345:12345 + 70000]
    assert list(scratch.iterdir()) == []


def test_support_opens_a_backup_with_its_own_identity(tmp_path, identity, scratch):
    support = x25519.Identity.generate()
    recipients = recipients_for(identity, [str(support.to_public()).upper() + "  "])
    assert [str(r) for r in recipients] == [str(identity.to_public()), str(support.to_public())]
    plain = zip_of(tmp_path / "plain.zip", {"a.txt": b"hello"})
    target = encrypt_file(plain, recipients, tmp_path / "x.zip.age")
    with open_decrypted(target, [support], scratch_parent=scratch) as reader:
        assert reader.read() == plain.read_bytes()


# --- wrong keys, damaged files -------------------------------------------------------------

def zip_of(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.fixture
def encrypted(tmp_path, identity) -> Path:
    plain = zip_of(tmp_path / "org_MEDP_monday_backup.zip",
                   {"big.bin": os.urandom(300_000), "manifest.json": b"{}"})
    return encrypt_file(plain, [identity.to_public()], tmp_path / encrypted_name(plain.name))


def test_a_wrong_key_or_none_says_which_sheet_to_import(encrypted, scratch):
    for identities in ([x25519.Identity.generate()], []):
        with pytest.raises(KeyMissing, match="key this workstation does not have: import "
                                             "the organization's recovery sheet"):
            open_decrypted(encrypted, identities, scratch_parent=scratch)
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "header cut", "empty"])
def test_a_damaged_age_file_is_refused_in_one_sentence(encrypted, identity, scratch, damage):
    data = bytearray(encrypted.read_bytes())
    if damage == "truncated":
        data = data[:-5000]
    elif damage == "flipped byte":
        data[len(data) // 2] ^= 0x01
    elif damage == "header cut":
        data = data[:40]
    else:
        data = bytearray()
    encrypted.write_bytes(bytes(data))
    with pytest.raises(EncryptedFileDamaged, match="cut off or damaged|is empty"):
        open_decrypted(encrypted, [identity], scratch_parent=scratch)
    assert list(scratch.iterdir()) == []


def test_a_plain_zip_is_not_taken_for_an_age_file(tmp_path, identity, scratch):
    plain = zip_of(tmp_path / "org_MEDP_monday_backup.zip.age", {"a.txt": b"hello"})
    with pytest.raises(NotEncrypted, match="not an age file"):
        open_decrypted(plain, [identity], scratch_parent=scratch)
    assert list(scratch.iterdir()) == []


# --- the writer's failures -------------------------------------------------------------------

def test_an_abandoned_backup_leaves_an_unfinished_age_file(tmp_path, identity):
    target = tmp_path / "x.zip.age"
    with pytest.raises(RuntimeError), open(target, "wb") as out, \
            EncryptingWriter(out, [identity.to_public()]) as writer:
        writer.write(os.urandom(3 * 1024 * 1024))
        raise RuntimeError("the export failed")
    with pytest.raises((OSError, pyrage.DecryptError)):  # the last block is missing
        pyrage.decrypt(target.read_bytes(), [identity])


def test_a_writer_dropped_without_close_leaves_an_unfinished_file(tmp_path, identity):
    target = tmp_path / "x.zip.age"
    with open(target, "wb") as out:
        writer = EncryptingWriter(out, [identity.to_public()])
        writer.write(os.urandom(100_000))
        del writer  # as when an exception unwinds past code that forgot the with
    with pytest.raises((OSError, pyrage.DecryptError)):
        pyrage.decrypt(target.read_bytes(), [identity])


def test_a_destination_that_refuses_bytes_fails_the_backup(tmp_path, identity):
    target = tmp_path / "x.zip.age"
    target.write_bytes(b"")
    with open(target, "rb") as read_only, \
            pytest.raises(DesktopBackupError, match="could not be encrypted"):
        with EncryptingWriter(read_only, [identity.to_public()]) as writer:
            for _ in range(8):  # more than the queue holds: the writer must not hang
                writer.write(os.urandom(1024 * 1024))


def test_the_writer_holds_megabytes_not_the_archive(tmp_path, identity):
    block = os.urandom(3 * 1024 * 1024 + 1)  # writes that overfill a chunk, 96 MiB in all
    tracemalloc.start()
    try:
        with open(tmp_path / "big.age", "wb") as out, \
                EncryptingWriter(out, [identity.to_public()]) as writer:
            for _ in range(32):
                writer.write(block)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024
    assert (tmp_path / "big.age").stat().st_size > 32 * len(block)


def test_a_full_disk_is_named_and_leaves_nothing(tmp_path):
    """A real full disk (a tmpfs half the archive's size, in a private mount namespace):
    the writer raises the disk's own error, which write_archive words; the reader says which
    folder is full and leaves no scratch file."""
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-r", "-m", "true"]).returncode != 0:
        pytest.skip("full-disk test needs Linux mount namespaces (unshare -r -m)")
    plain = zip_of(tmp_path / "org_MEDP_monday_backup.zip", {"a.bin": os.urandom(2_000_000)})
    mount = tmp_path / "small-disk"
    mount.mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    child = Path(__file__).with_name("encryption_full_disk_child.py")
    run = subprocess.run([unshare, "-r", "-m", sys.executable, str(child), str(plain),
                          str(mount)], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["write_error"]["errno"] == errno.ENOSPC
    assert report["read_error"].startswith("The backup could not be decrypted for reading: "
                                           f"the temporary folder {mount} refused it")
    assert report["left"] == []


def test_no_recipient_no_backup(tmp_path):
    with pytest.raises(DesktopBackupError, match="at least one key"):
        EncryptingWriter(io.BytesIO(), [])


# --- names -----------------------------------------------------------------------------------

def test_an_encrypted_slot_is_the_plain_slot_with_age_appended(sqlite_demo_db):
    engine = open_engine(sqlite_demo_db)
    try:
        with engine.connect() as conn:
            org = find_organization(conn, MAPPING, "MEDP")
    finally:
        engine.dispose()
    slot = slot_filename(org, "monday")
    assert encrypted_name(slot) == "org_MEDP_monday_backup.zip.age"
    assert plain_name(encrypted_name(slot)) == plain_name(slot) == slot
    assert is_encrypted_name(encrypted_name(slot)) and not is_encrypted_name(slot)


# --- the key in the keyring ------------------------------------------------------------------

def test_the_key_lives_in_the_keyring_and_nowhere_else(memory_keyring):
    assert load_org_key(1) is None
    made = create_org_key(1)
    assert memory_keyring.passwords == {(ORG_KEY_SERVICE, org_key_name(1)): str(made)}
    assert str(load_org_key(1)) == str(made)
    assert load_org_key(2) is None
    with pytest.raises(KeyAlreadyPresent):
        create_org_key(1)
    assert str(load_org_key(1)) == str(made)

    assert import_org_key(1, made) is False  # the same key: nothing to do
    other = x25519.Identity.generate()
    with pytest.raises(KeyAlreadyPresent, match=fingerprint(made.to_public())):
        import_org_key(1, other)
    assert str(load_org_key(1)) == str(made)
    assert import_org_key(1, other, replace=True) is True
    assert str(load_org_key(1)) == str(other)

    delete_org_key(1)
    delete_org_key(1)  # twice: nothing to remove is fine
    assert load_org_key(1) is None and memory_keyring.passwords == {}


def test_turning_encryption_on_again_keeps_the_key(memory_keyring):
    first = ensure_org_key(1)
    again = ensure_org_key(1)
    assert first.created and not again.created
    assert str(again.identity) == str(first.identity)
    delete_org_key(1)
    assert ensure_org_key(1).created  # lost: a new key, and a new sheet to print


def test_a_damaged_keyring_entry_is_named(memory_keyring):
    memory_keyring.passwords[(ORG_KEY_SERVICE, org_key_name(1))] = "AGE-SECRET-KEY-1XYZ"
    with pytest.raises(InvalidKey, match="damaged; import the recovery sheet"):
        load_org_key(1)


def test_without_a_usable_keyring_no_key_is_made(unusable_keyring):
    with pytest.raises(KeyringUnavailable, match="cannot be (read or )?kept safely"):
        create_org_key(1)
    with pytest.raises(KeyringUnavailable):
        load_org_key(1)  # "no key" would send the owner looking for a sheet needlessly


# --- recipients ------------------------------------------------------------------------------

def test_a_fingerprint_anyone_can_recompute(identity):
    public = str(identity.to_public())
    digest = hashlib.sha256(public.encode()).hexdigest()[:16]
    assert fingerprint(identity.to_public()) == fingerprint(public.upper()) == "-".join(
        digest[i:i + 4] for i in range(0, 16, 4))
    assert fingerprint(identity.to_public()) != fingerprint(
        x25519.Identity.generate().to_public())


@pytest.mark.parametrize("text", ["", "age1", "ssh-ed25519 AAAA", "AGE-SECRET-KEY-1QQQ"])
def test_a_recipient_that_is_not_an_age_public_key_is_refused(text):
    with pytest.raises(InvalidKey, match="is not an age public key"):
        parse_recipient(text)


def test_a_recipient_given_twice_is_used_once(identity):
    support = str(x25519.Identity.generate().to_public())
    own = str(identity.to_public())
    assert [str(r) for r in recipients_for(identity, [support, own, support])] == [own, support]


# --- the recovery sheet ----------------------------------------------------------------------

@pytest.fixture
def medp(sqlite_demo_db):
    engine = open_engine(sqlite_demo_db)
    try:
        with engine.connect() as conn:
            return find_organization(conn, MAPPING, "MEDP")
    finally:
        engine.dispose()


def test_the_recovery_sheet_gives_the_key_back(identity, medp):
    sheet = recovery_sheet_text(identity, medp, datetime(2026, 12, 2, 9, 30))
    for words in (medp.name, f"code: {medp.code}", f"id: {medp.id}", "2026-12-02",
                  str(identity), str(identity.to_public()), "age -d -i", "key import"):
        assert words in sheet
    back = parse_recovery_text(sheet)
    assert str(back.identity) == str(identity) and back.organization_id == medp.id
    back.check_organization(medp)

    pasted = parse_recovery_text("  " + str(identity).lower()[:40] + "\n" +
                                 str(identity).lower()[40:] + "  ")
    assert str(pasted.identity) == str(identity) and pasted.organization_id is None


def test_a_sheet_of_another_organization_is_refused(identity, medp):
    sheet = recovery_sheet_text(identity, medp, datetime(2026, 12, 2, 9, 30))
    other = parse_recovery_text(sheet.replace(f"# Organization id: {medp.id}",
                                              "# Organization id: 999"))
    with pytest.raises(InvalidKey, match="belongs to organization 999"):
        other.check_organization(medp)


def test_a_mistyped_missing_or_doubled_key_is_refused(identity):
    secret = str(identity)
    typo = secret[:30] + ("Q" if secret[30] != "Q" else "P") + secret[31:]
    with pytest.raises(InvalidKey, match="mistyped or damaged"):
        parse_recovery_text(typo)
    with pytest.raises(InvalidKey, match="No recovery key was found"):
        parse_recovery_text("# a sheet without its key\n")
    with pytest.raises(InvalidKey, match="more than one"):
        parse_recovery_text(secret + "\n" + str(x25519.Identity.generate()))


def test_the_owner_proves_the_sheet_was_kept_by_retyping_its_end(identity):
    tail = str(identity)[-RETYPE_CHARS:]
    assert retyped_correctly(identity, tail)
    assert retyped_correctly(identity, " " + tail.lower()[:3] + " " + tail.lower()[3:])
    assert not retyped_correctly(identity, str(identity)[-RETYPE_CHARS - 1:-1])
    assert not retyped_correctly(identity, "")


def test_the_age_tool_opens_a_backup_with_the_sheet_alone(tmp_path, identity, medp):
    if shutil.which("age") is None:
        if os.environ.get("DESKTOP_BACKUP_REQUIRE_SERVERS"):  # CI installs it (.ci/run)
            pytest.fail("the age command-line tool is missing")
        pytest.skip("the age command-line tool is not installed (apt-get install age)")
    plain = zip_of(tmp_path / "org_MEDP_monday_backup.zip", {"a.txt": os.urandom(200_000)})
    target = encrypt_file(plain, [identity.to_public()], tmp_path / encrypted_name(plain.name))
    sheet = tmp_path / "recovery-sheet.txt"
    sheet.write_text(recovery_sheet_text(identity, medp, datetime(2026, 12, 2, 9, 30)))
    out = tmp_path / "restored.zip"
    subprocess.run(["age", "-d", "-i", str(sheet), "-o", str(out), str(target)], check=True)
    assert out.read_bytes() == plain.read_bytes()
