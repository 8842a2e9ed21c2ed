"""What the login tests share: hashes as the web app (PHP) writes them, cheap demo passwords,
and a clock in seconds that only moves when a test says so."""

from __future__ import annotations

import bcrypt
from sqlalchemy import text

from desktop_backup.demo import DEMO_PASSWORD


def php_bcrypt(password: str | bytes, rounds: int = 4, prefix: str = "$2y$") -> str:
    """A hash as PHP's password_hash() writes it: bcrypt under the $2y$ prefix."""
    secret = password.encode() if isinstance(password, str) else password
    hashed = bcrypt.hashpw(secret, bcrypt.gensalt(rounds=rounds)).decode()
    return prefix + hashed[4:]


def cheap_passwords(engine) -> None:
    """Every user's password is the demo's, hashed at cost 4: the demo's cost-12 hashes
    take a quarter second per login, and these tests are about logic, not bcrypt."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE users SET password = :pw"), {"pw": php_bcrypt(DEMO_PASSWORD)})


class SecondsClock:
    """Time that only moves when the test says so."""

    def __init__(self, start: float = 1_767_600_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
