"""Throw-away databases on the real test servers, one per test.

A server's URL comes from an environment variable; when it is unset the test is skipped with
a reason that names the variable, unless DESKTOP_BACKUP_REQUIRE_SERVERS is set (as in CI),
where a missing server is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

SERVER_ENV = {
    "mysql": "DESKTOP_BACKUP_TEST_MYSQL_URL",
    "postgres": "DESKTOP_BACKUP_TEST_PG_URL",
}
DIALECTS = ("sqlite", "mysql", "postgres")


def server_url(dialect: str) -> str:
    """The server's base URL, or skip (fail in CI) with the variable to set."""
    env = SERVER_ENV[dialect]
    url = os.environ.get(env)
    if not url:
        message = f"{dialect} tests skipped: set {env} to a server URL to run them"
        if os.environ.get("DESKTOP_BACKUP_REQUIRE_SERVERS"):
            pytest.fail(message.replace("skipped", "required"))
        pytest.skip(message)
    return url


@contextmanager
def fresh_database(dialect: str, tmp_path: Path) -> Iterator[str]:
    """A new empty database on `dialect`; yields its URL and drops it afterwards."""
    if dialect == "sqlite":
        # In a folder of its own, so tests can use tmp_path itself as a backup folder.
        path = tmp_path / "databases" / f"billing-{uuid.uuid4().hex[:8]}.sqlite"
        path.parent.mkdir(exist_ok=True)
        path.touch()
        yield f"sqlite:///{path}"
        return
    base = make_url(server_url(dialect))
    name = f"dbt_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if dialect == "mysql":
                conn.exec_driver_sql(
                    f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            else:
                conn.exec_driver_sql(f"CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0")
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            if dialect == "mysql":
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            else:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()
