"""Shared fixtures: a fresh app folder, a fresh billing database per dialect, keyring in memory."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402

from desktop_backup.config import AppPaths  # noqa: E402
from desktop_backup.demo import load_demo  # noqa: E402
from tests.dbservers import DIALECTS, fresh_database  # noqa: E402, F401

# Small enough to load into a server in about a second, large enough to batch and stream.
TEST_SCALE = 0.05


def pytest_collection_modifyitems(config, items):
    for item in items:
        callspec = getattr(item, "callspec", None)
        dialect = callspec.params.get("dialect") if callspec else None
        if dialect in ("mysql", "postgres"):
            item.add_marker(getattr(pytest.mark, dialect))


@pytest.fixture
def app_paths(tmp_path) -> AppPaths:
    """A private config/data/log tree for one test."""
    root = tmp_path / "app"
    return AppPaths(root / "config", root / "data", root / "logs")


@pytest.fixture(params=DIALECTS)
def dialect(request) -> str:
    return request.param


@pytest.fixture
def empty_db(dialect, tmp_path):
    """The URL of a new, empty database on the dialect under test."""
    with fresh_database(dialect, tmp_path) as url:
        yield url


@pytest.fixture
def demo_db(empty_db) -> str:
    """The URL of a database holding the demo billing data (reduced in size)."""
    engine = create_engine(empty_db)
    try:
        load_demo(engine, scale=TEST_SCALE)
    finally:
        engine.dispose()
    return empty_db


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory) -> Path:
    """The demo data loaded into SQLite once per run; tests get a copy (milliseconds, not a
    second each)."""
    path = tmp_path_factory.mktemp("demo-template") / "billing.sqlite"
    engine = create_engine(f"sqlite:///{path}")
    try:
        load_demo(engine, scale=TEST_SCALE)
    finally:
        engine.dispose()
    return path


@pytest.fixture
def sqlite_demo_db(demo_template, tmp_path) -> str:
    """The demo billing data in SQLite only, for tests about logic rather than dialects."""
    path = tmp_path / "databases" / "billing.sqlite"
    path.parent.mkdir(exist_ok=True)
    shutil.copyfile(demo_template, path)
    return f"sqlite:///{path}"
