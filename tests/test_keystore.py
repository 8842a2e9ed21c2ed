"""Database passwords live in the OS keyring, or nowhere: never in a file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from desktop_backup import keystore
from desktop_backup.config import load_settings
from desktop_backup.demo import DEMO_PASSWORD
from desktop_backup.errors import KeyringUnavailable
from desktop_backup.profiles import add_profile, remove_profile, resolve_connection
from tests.memory_keyring import LockedKeyring, MemoryKeyring, installed

pytest_plugins = ["tests.keyring_fixtures"]  # memory_keyring, unusable_keyring

PASSWORD = "Kx9-unique-db-secret"
URL = f"mysql+pymysql://shop:{PASSWORD}@db.local/billing"


def files_holding(root: Path, text: str) -> list[Path]:
    """Every file under ``root`` whose bytes contain ``text``."""
    needle = text.encode()
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


# --- the keyring itself ---------------------------------------------------------------------


def test_a_password_is_saved_replaced_and_forgotten(memory_keyring):
    keystore.set_password("shop", "first")
    assert keystore.get_password("shop") == "first"

    keystore.set_password("shop", "second")
    assert keystore.get_password("shop") == "second"

    keystore.forget_password("shop")
    assert keystore.get_password("shop") is None


def test_passwords_are_filed_under_the_app_and_profile_name(memory_keyring):
    # Support staff look for "DesktopBackup" entries in Credential Manager / Keychain Access.
    keystore.set_password("front-shop", "pw")
    assert keyring.get_password("DesktopBackup", "front-shop") == "pw"
    assert keystore.get_password("back-shop") is None


def test_forgetting_a_password_that_was_never_saved_is_not_an_error(memory_keyring):
    keystore.forget_password("never-saved")
    assert keystore.get_password("never-saved") is None


def test_a_working_keyring_is_reported_usable(memory_keyring):
    status = keystore.keyring_status()
    assert status.usable
    assert "MemoryKeyring" in status.backend
    assert status.message.endswith(".")


def test_an_explicit_backend_is_used_instead_of_the_global_one(memory_keyring):
    other = MemoryKeyring()
    keystore.set_password("shop", "pw", backend=other)
    assert keystore.get_password("shop", backend=other) == "pw"
    assert keystore.get_password("shop") is None


def test_an_unusable_keyring_is_reported_in_one_plain_sentence(unusable_keyring):
    status = keystore.keyring_status()
    assert not status.usable
    assert "keyring" in status.message
    assert "each time" in status.message
    assert "Traceback" not in status.message and "\n" not in status.message


def test_the_fail_backend_of_a_frozen_app_is_named(memory_keyring):
    with installed(fail.Keyring()):
        status = keystore.keyring_status()
    assert not status.usable
    assert status.backend == "keyring.backends.fail.Keyring"
    assert "no usable password store" in status.message


def test_an_unusable_keyring_refuses_to_save_and_reads_nothing(unusable_keyring):
    with pytest.raises(KeyringUnavailable) as raised:
        keystore.set_password("shop", PASSWORD)
    message = str(raised.value)
    assert "cannot be saved" in message or "refused" in message
    assert "asked" in message and "each time" in message
    assert PASSWORD not in message
    assert keystore.get_password("shop") is None


def test_the_no_keyring_message_is_the_documented_sentence(memory_keyring):
    with installed(fail.Keyring()), pytest.raises(KeyringUnavailable) as raised:
        keystore.set_password("shop", PASSWORD)
    assert str(raised.value) == (
        "This computer has no usable password store (keyring), so the database password "
        "cannot be saved; you will be asked for it each time."
    )


def test_a_locked_keyring_says_it_is_locked(memory_keyring):
    with installed(LockedKeyring()):
        status = keystore.keyring_status()
        with pytest.raises(KeyringUnavailable, match="locked"):
            keystore.set_password("shop", PASSWORD)
        with pytest.raises(KeyringUnavailable, match="could not be removed"):
            keystore.forget_password("shop")
    assert not status.usable
    assert "locked" in status.message


# --- profiles and the keyring -----------------------------------------------------------------


def test_a_profile_password_goes_to_the_keyring_not_to_disk(app_paths, memory_keyring, tmp_path):
    settings = load_settings(app_paths)
    add_profile(app_paths, settings, "shop", URL)

    assert keyring.get_password("DesktopBackup", "shop") == PASSWORD
    assert files_holding(tmp_path, PASSWORD) == []
    target = resolve_connection(app_paths, load_settings(app_paths), None, "shop")
    assert target.password == PASSWORD
    assert PASSWORD not in target.url


def test_without_a_keyring_the_profile_is_still_saved_but_not_its_password(
    app_paths, unusable_keyring, tmp_path
):
    settings = load_settings(app_paths)
    with pytest.raises(KeyringUnavailable) as raised:
        add_profile(app_paths, settings, "shop", URL)

    message = str(raised.value)
    assert "'shop' is saved" in message
    assert "each time" in message
    assert PASSWORD not in message
    # Nothing fell back to a file: no file anywhere under the test folder holds the password.
    assert files_holding(tmp_path, PASSWORD) == []
    reloaded = load_settings(app_paths)
    assert reloaded.profiles["shop"].url == "mysql+pymysql://shop@db.local/billing"
    # Next time, the caller learns it has to ask.
    target = resolve_connection(app_paths, reloaded, None, "shop")
    assert target.password is None
    assert target.url == "mysql+pymysql://shop@db.local/billing"


def test_a_password_typed_separately_wins_over_one_in_the_address(app_paths, memory_keyring):
    settings = load_settings(app_paths)
    add_profile(app_paths, settings, "shop", URL, password="typed-in-the-dialog")
    assert keystore.get_password("shop") == "typed-in-the-dialog"


def test_editing_a_profile_address_keeps_its_saved_password(app_paths, memory_keyring):
    settings = load_settings(app_paths)
    add_profile(app_paths, settings, "shop", URL)
    add_profile(app_paths, settings, "shop", "mysql+pymysql://shop@new-server.local/billing")

    target = resolve_connection(app_paths, load_settings(app_paths), None, "shop")
    assert target.url == "mysql+pymysql://shop@new-server.local/billing"
    assert target.password == PASSWORD


def test_a_new_password_replaces_the_saved_one(app_paths, memory_keyring):
    settings = load_settings(app_paths)
    add_profile(app_paths, settings, "shop", URL)
    add_profile(app_paths, settings, "shop", "mysql+pymysql://shop:changed@db.local/billing")
    assert resolve_connection(app_paths, settings, None, "shop").password == "changed"


def test_removing_a_profile_forgets_its_password(app_paths, memory_keyring):
    settings = load_settings(app_paths)
    add_profile(app_paths, settings, "shop", URL)
    remove_profile(app_paths, settings, "shop")

    assert "shop" not in load_settings(app_paths).profiles
    assert keyring.get_password("DesktopBackup", "shop") is None
    # A new profile of the same name does not inherit the old password.
    add_profile(app_paths, settings, "shop", "mysql+pymysql://shop@db.local/billing")
    assert resolve_connection(app_paths, settings, None, "shop").password is None


def test_removing_a_profile_while_the_keyring_is_locked_says_the_password_stayed(
    app_paths, memory_keyring
):
    settings = load_settings(app_paths)
    add_profile(app_paths, settings, "shop", URL)
    with installed(LockedKeyring()), pytest.raises(KeyringUnavailable) as raised:
        remove_profile(app_paths, settings, "shop")

    assert "'shop' is removed" in str(raised.value)
    assert "could not be removed" in str(raised.value)
    assert "shop" not in load_settings(app_paths).profiles


def test_a_keyring_that_cannot_be_loaded_is_no_keyring_said_in_one_sentence(
        sqlite_demo_db, tmp_path):
    """PYTHON_KEYRING_BACKEND naming a backend that is not installed (a frozen app that lost
    its backends, a typo): the console says it has no password store, no traceback."""
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyrings.not_installed.Keyring",
           "DESKTOP_BACKUP_HOME": str(tmp_path / "home"),
           "DESKTOP_BACKUP_PASSWORD": DEMO_PASSWORD}
    done = subprocess.run(
        [sys.executable, "-m", "desktop_backup", "encryption", "on", "--db", sqlite_demo_db,
         "--org", "MEDP", "--user", "medp.admin"],
        capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "desktop-backup: This computer has no usable password store (keyring), so the "
        "organization's encryption key cannot be kept safely or read; encrypted backups "
        "cannot be made or opened here.")
