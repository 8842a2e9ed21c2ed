"""Keyring backends for tests: one that remembers in memory, one that is always locked.

Both have a negative priority, so keyring never picks them on its own when they happen to be
imported before its first use; a test installs one explicitly with :func:`installed` or the
fixtures in tests/keyring_fixtures.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import keyring
from keyring.backend import KeyringBackend
from keyring.errors import KeyringLocked, PasswordDeleteError


class MemoryKeyring(KeyringBackend):
    """A working password store that forgets everything when the test ends."""

    priority = -10  # type: ignore[assignment]  # never chosen automatically

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.passwords[(service, username)]
        except KeyError:
            # What the real backends do when there is nothing to delete.
            raise PasswordDeleteError("Password not found") from None


class LockedKeyring(KeyringBackend):
    """A store that exists but refuses every call, like a locked macOS keychain."""

    priority = -10  # type: ignore[assignment]  # never chosen automatically

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("The keyring is locked.")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringLocked("The keyring is locked.")

    def delete_password(self, service: str, username: str) -> None:
        raise KeyringLocked("The keyring is locked.")


@contextmanager
def installed(backend: KeyringBackend) -> Iterator[KeyringBackend]:
    """Make ``backend`` the process-wide keyring until the block ends, then put back the old one."""
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)
