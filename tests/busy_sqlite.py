"""The billing program holding SQLite's exclusive lock, as a test needs it."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager

from sqlalchemy.engine import make_url


@contextmanager
def billing_program_locks(url: str, seconds: float):
    """Another program holds the SQLite file's exclusive lock for `seconds`."""
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(make_url(url).database, isolation_level=None)
        try:
            conn.execute("BEGIN EXCLUSIVE")
            held.set()
            done.wait(seconds)
            conn.execute("ROLLBACK")
        finally:
            conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10)
    try:
        yield done
    finally:
        thread.join(seconds + 30)
