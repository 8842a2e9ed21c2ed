"""Fixtures that install a keyring backend for one test and restore the previous one after.

A test module loads them with ``pytest_plugins = ["tests.keyring_fixtures"]`` (importing the
fixtures by name would trip ruff's F811 on every test that takes one, and importing this
module before pytest loads it would defeat assertion rewriting).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null

from tests.memory_keyring import LockedKeyring, MemoryKeyring, installed


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    """A working keyring in memory; inspect ``.passwords`` to see what was saved."""
    with installed(MemoryKeyring()) as backend:
        yield backend


UNUSABLE = {
    "no backend": fail.Keyring,  # what a frozen app that lost its backends gets
    "null backend": null.Keyring,  # keeps nothing, silently
    "locked": LockedKeyring,
}


@pytest.fixture(params=sorted(UNUSABLE))
def unusable_keyring(request) -> Iterator[KeyringBackend]:
    """Each way a keyring can fail to keep a password."""
    with installed(UNUSABLE[request.param]()) as backend:
        yield backend
