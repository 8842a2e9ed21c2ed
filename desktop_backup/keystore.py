"""Database passwords and encryption keys in the OS keyring, and a plain answer when there is none.

A profile's database password never touches settings.json or any other file: it lives in the
operating system's password store under the service ``DesktopBackup`` with the profile name as
the key. An organization's backup encryption key (an age secret key, see orgkeys.py) lives
there too, under the service ``DesktopBackup encryption`` with ``organization {id}`` as the
key (holding its key of each billing database: orgkeys.py); unlike a password it cannot be
asked for again, so every failure to read or keep it is raised, never answered with None.

Frozen apps and headless machines often end up with keyring's ``fail`` or ``null`` backend,
and a macOS keychain or GNOME keyring can be locked; then nothing is saved, the caller is
told in one sentence, and the password is asked for each time. There is deliberately
no fallback to a file (a plaintext fallback is Vorta's issue #1361).

Every function uses the process-wide backend (``keyring.get_keyring()``) unless one is passed,
so tests install an in-memory backend with ``keyring.set_keyring``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import keyring
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null
from keyring.errors import KeyringError, KeyringLocked, PasswordDeleteError

from desktop_backup.errors import KeyringUnavailable

SERVICE = "DesktopBackup"
ORG_KEY_SERVICE = "DesktopBackup encryption"
_PROBE_KEY = "desktop-backup-probe"

NO_STORE = (
    "This computer has no usable password store (keyring), so the database password cannot be "
    "saved; you will be asked for it each time."
)
LOCKED = (
    "The password store (keyring) is locked, so the database password cannot be saved; "
    "unlock it, or you will be asked for the password each time."
)
REFUSED = (
    "The password store (keyring) refused to save the database password; "
    "you will be asked for it each time."
)

# What a shop owner calls the store each keyring backend module talks to.
_FRIENDLY_NAMES = {
    "keyring.backends.Windows": "Windows Credential Manager",
    "keyring.backends.macOS": "the macOS Keychain",
    "keyring.backends.SecretService": "the desktop keyring (Secret Service)",
    "keyring.backends.libsecret": "the desktop keyring (Secret Service)",
    "keyring.backends.kwallet": "KWallet",
}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyringStatus:
    """Whether passwords can be remembered, for the start-up check and the settings page."""

    usable: bool
    backend: str  # the backend's class path, for support staff and the log
    message: str  # one plain sentence for the person at the keyboard


def keyring_status(backend: KeyringBackend | None = None) -> KeyringStatus:
    """Check once, at start-up, whether saved passwords will work, and say so plainly."""
    store = _active(backend)
    name = _class_path(store)
    if not _has_store(store):
        return KeyringStatus(
            False,
            name,
            "This computer has no usable password store (keyring), so database passwords "
            "cannot be saved; you will be asked for them each time.",
        )
    try:
        store.get_password(SERVICE, _PROBE_KEY)
    except KeyringLocked as exc:
        log.warning("The keyring %s is locked: %s", name, exc)
        return KeyringStatus(
            False,
            name,
            "The password store (keyring) is locked, so saved database passwords cannot be "
            "used; unlock it, or you will be asked for them each time.",
        )
    except KeyringError as exc:
        log.warning("The keyring %s does not answer: %s", name, exc)
        return KeyringStatus(
            False,
            name,
            "The password store (keyring) is not answering, so saved database passwords "
            "cannot be used; you will be asked for them each time.",
        )
    return KeyringStatus(True, name, f"Database passwords are kept in {_friendly(store)}.")


def get_password(profile: str, *, backend: KeyringBackend | None = None) -> str | None:
    """The saved password of a profile, or None so that the caller asks the user for it."""
    store = _active(backend)
    if not _has_store(store):
        return None
    try:
        return store.get_password(SERVICE, profile)
    except KeyringError as exc:
        log.warning("Could not read the password of profile %r from the keyring: %s", profile, exc)
        return None


def set_password(profile: str, password: str, *, backend: KeyringBackend | None = None) -> None:
    """Remember (or replace) a profile's password; KeyringUnavailable when it cannot be."""
    store = _active(backend)
    if not _has_store(store):
        raise KeyringUnavailable(NO_STORE)
    try:
        store.set_password(SERVICE, profile, password)
    except KeyringLocked as exc:
        raise KeyringUnavailable(LOCKED) from exc
    except KeyringError as exc:
        log.warning("The keyring refused the password of profile %r: %s", profile, exc)
        raise KeyringUnavailable(REFUSED) from exc


def forget_password(profile: str, *, backend: KeyringBackend | None = None) -> None:
    """Remove a profile's saved password; nothing to do when none is saved.

    Raises KeyringUnavailable when a password may be saved but the store will not remove it
    (locked): the user must know the password is still on this computer.
    """
    store = _active(backend)
    if not _has_store(store):
        return
    try:
        store.delete_password(SERVICE, profile)
    except PasswordDeleteError:
        return  # backends report "not found" this way
    except KeyringError as exc:
        log.warning("The keyring kept the password of profile %r: %s", profile, exc)
        raise KeyringUnavailable(
            "The password store (keyring) is locked or not answering, so the saved database "
            "password could not be removed; unlock it and try again."
        ) from exc


def org_key_name(org_id: int) -> str:
    """The keyring entry that holds an organization's encryption key."""
    return f"organization {int(org_id)}"


def get_org_key(org_id: int, *, backend: KeyringBackend | None = None) -> str | None:
    """An organization's secret key from the keyring, or None when this workstation has none.

    Raises KeyringUnavailable when the store cannot be asked (none, locked, not answering):
    "no key" would then be a lie that sends the owner looking for a recovery sheet."""
    store = _active(backend)
    if not _has_store(store):
        raise KeyringUnavailable(
            "This computer has no usable password store (keyring), so the organization's "
            "encryption key cannot be kept safely or read; encrypted backups cannot be made "
            "or opened here.")
    try:
        return store.get_password(ORG_KEY_SERVICE, org_key_name(org_id))
    except KeyringError as exc:
        log.warning("Could not read the encryption key of organization %s: %s", org_id, exc)
        raise KeyringUnavailable(
            "The password store (keyring) is locked or not answering, so the organization's "
            "encryption key cannot be read or kept safely; unlock it and try again.") from exc


def set_org_key(org_id: int, secret: str, *, backend: KeyringBackend | None = None) -> None:
    """Keep an organization's secret key, and read it back: a key that was not kept must not
    encrypt a single backup. KeyringUnavailable when it cannot be kept."""
    store = _active(backend)
    if not _has_store(store):
        raise KeyringUnavailable(
            "This computer has no usable password store (keyring), so the encryption key "
            "cannot be kept safely; encryption was not turned on.")
    name = org_key_name(org_id)
    try:
        store.set_password(ORG_KEY_SERVICE, name, secret)
        kept = store.get_password(ORG_KEY_SERVICE, name)
    except KeyringError as exc:
        log.warning("The keyring refused the encryption key of organization %s: %s",
                    org_id, exc)
        raise KeyringUnavailable(
            "The password store (keyring) is locked or refused the encryption key, so it "
            "cannot be kept safely; unlock it and try again.") from exc
    if kept != secret:
        raise KeyringUnavailable(
            "The password store (keyring) did not keep the encryption key it was given, so "
            "the key cannot be kept safely on this computer.")


def forget_org_key(org_id: int, *, backend: KeyringBackend | None = None) -> None:
    """Remove an organization's key from this workstation; nothing to do when there is none.
    Raises KeyringUnavailable when the store will not remove it."""
    store = _active(backend)
    if not _has_store(store):
        return
    try:
        store.delete_password(ORG_KEY_SERVICE, org_key_name(org_id))
    except PasswordDeleteError:
        return
    except KeyringError as exc:
        log.warning("The keyring kept the encryption key of organization %s: %s", org_id, exc)
        raise KeyringUnavailable(
            "The password store (keyring) is locked or not answering, so the encryption key "
            "could not be removed; unlock it and try again.") from exc


def _active(backend: KeyringBackend | None) -> KeyringBackend:
    """The keyring to use; one that cannot even be loaded (PYTHON_KEYRING_BACKEND naming a
    module that is not installed, a broken keyringrc.cfg) is no keyring, said plainly by the
    callers, never a traceback."""
    if backend is not None:
        return backend
    try:
        return keyring.get_keyring()
    except Exception as exc:  # noqa: BLE001 - keyring raises whatever loading the backend raises
        log.warning("The keyring could not be loaded: %s", exc)
        return fail.Keyring()


def _has_store(store: KeyringBackend) -> bool:
    """False for the backends that silently keep nothing (null) or refuse everything (fail)."""
    if isinstance(store, fail.Keyring | null.Keyring):
        return False
    if isinstance(store, chainer.ChainerBackend):
        return bool(store.backends)
    return True


def _class_path(store: KeyringBackend) -> str:
    cls = type(store)
    return f"{cls.__module__}.{cls.__qualname__}"


def _friendly(store: KeyringBackend) -> str:
    if isinstance(store, chainer.ChainerBackend) and store.backends:
        store = store.backends[0]  # the chainer saves into its first backend
    module = type(store).__module__
    for prefix, friendly in _FRIENDLY_NAMES.items():
        if module == prefix or module.startswith(prefix + "."):
            return friendly
    return f"the password store '{store.name}'"
