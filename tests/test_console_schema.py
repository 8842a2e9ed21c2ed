"""The console's own tables kept apart from the billing tables (issue 20, point 6): with
--console-schema or the setting console_schema they go to another schema (PostgreSQL), another
database on the same server (MySQL/MariaDB) or a file beside the billing file (SQLite), and the
billing schema gets none of them; without it nothing changes."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import MetaData, Table, create_engine, inspect, select, update
from sqlalchemy.engine import make_url

from desktop_backup.cli import main
from desktop_backup.config import Settings, save_settings
from desktop_backup.db import console_file
from desktop_backup.tenancy import CONSOLE_TABLES
from tests.dbservers import fresh_database
from tests.membership_schema import MAPPING, PASSWORD, load_membership_schema


@pytest.fixture
def members_db(empty_db) -> str:
    load_membership_schema(empty_db)
    return empty_db


@pytest.fixture
def schema(members_db, dialect):
    """A name for the console's schema; on MariaDB a database of the server (shared by every
    test database there), so unique, and dropped afterwards."""
    name = f"console_{uuid.uuid4().hex[:8]}" if dialect == "mysql" else "console"
    yield name
    if dialect == "mysql":
        engine = create_engine(members_db)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            engine.dispose()


@pytest.fixture
def run(app_paths, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DESKTOP_BACKUP_PASSWORD", PASSWORD)
    save_settings(app_paths, Settings(mapping=MAPPING))

    def run_(*argv: str):
        folder = ["--dir", str(tmp_path / "backups")] if argv[0] in ("backup", "list",
                                                                      "restore") else []
        code = main([*argv, *folder], paths=app_paths)
        out, err = capsys.readouterr()
        return code, out, err
    return run_


def billing_tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def console_tables(url: str, schema: str) -> set[str]:
    """The tables in the console's schema, looked at as an outsider would (its own engine,
    the SQLite file opened directly)."""
    url_ = make_url(url)
    if url_.get_backend_name() == "sqlite":
        path = console_file(url_, schema)
        url, schema = f"sqlite:///{path}", None
        if not path.exists():
            return set()
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        if schema is not None and schema not in inspector.get_schema_names():
            return set()
        return set(inspector.get_table_names(schema=schema))
    finally:
        engine.dispose()


def audit_actions(url: str, schema: str) -> list[tuple[str, str]]:
    url_ = make_url(url)
    if url_.get_backend_name() == "sqlite":
        url, schema = f"sqlite:///{console_file(url_, schema)}", None
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            audit = Table("desktop_backup_audit", MetaData(schema=schema), autoload_with=conn)
            return [(r.action, r.outcome) for r in conn.execute(
                select(audit.c.action, audit.c.outcome).order_by(audit.c.id))]
    finally:
        engine.dispose()


def rename_customer(url: str, customer_id: int, name: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            customers = Table("customers", MetaData(), autoload_with=conn)
            conn.execute(update(customers).where(customers.c.id == customer_id)
                         .values(name=name))
    finally:
        engine.dispose()


def customer_name(url: str, customer_id: int) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            customers = Table("customers", MetaData(), autoload_with=conn)
            return conn.execute(select(customers.c.name).where(
                customers.c.id == customer_id)).scalar_one()
    finally:
        engine.dispose()


def backup(run, url, *options):
    code, out, err = run("backup", "--db", url, "--org", "ACME", "--user", "bob", "--json",
                         *options)
    assert code == 0, err
    return json.loads(out)


def test_the_console_schema_holds_every_table_of_the_console_and_the_billing_none(
        run, members_db, schema):
    before = billing_tables(members_db)
    first = backup(run, members_db, "--console-schema", schema, "--create-console-tables")
    assert first["ok"] and first["tables"]["customers"] == 2
    assert billing_tables(members_db) == before
    assert {"auto_backup_logs", "desktop_backup_audit", "desktop_backup_runs",
            "desktop_backup_keys"} <= console_tables(members_db, schema)
    assert console_tables(members_db, schema) <= CONSOLE_TABLES
    # The slot is read back from there: today's backup is done, and `list` shows it.
    again = backup(run, members_db, "--console-schema", schema)
    assert again["skipped"], again["message"]
    code, out, err = run("list", "--db", members_db, "--org", "ACME", "--console-schema",
                         schema, "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert [s["path"] for s in listed["slots"] if s["today"]] == [first["path"]]
    assert [a["action"] for a in listed["audit"]][:2] == ["skipped", "backup"]
    # The archive is sealed with the key kept there: verify finds it unchanged.
    code, out, err = run("verify", first["path"], "--db", members_db, "--console-schema",
                         schema, "--json")
    assert code == 0, err
    assert json.loads(out)["authenticity"] == "authentic"


def test_a_restore_works_and_writes_its_audit_in_the_console_schema(run, members_db, schema):
    before = billing_tables(members_db)
    made = backup(run, members_db, "--console-schema", schema, "--create-console-tables")
    rename_customer(members_db, 1, "Changed after the backup")
    code, out, err = run("restore", made["path"], "--db", members_db, "--org", "ACME",
                         "--user", "bob", "--yes", "--console-schema", schema, "--json")
    assert code == 0, err
    assert json.loads(out)["changes"]["changed"] == 1
    assert customer_name(members_db, 1) == "Acme Pharmacy"
    assert ("restore", "success") in audit_actions(members_db, schema)
    assert billing_tables(members_db) == before


def test_the_archive_and_the_scope_never_see_the_console_tables(run, members_db, schema):
    made = backup(run, members_db, "--console-schema", schema, "--create-console-tables")
    assert not set(made["tables"]) & CONSOLE_TABLES
    code, out, err = run("scope", "--db", members_db, "--console-schema", schema, "--json")
    assert code == 0, err
    assert not {t["table"] for t in json.loads(out)["tables"]} & CONSOLE_TABLES
    code, out, err = run("scope", "--db", members_db, "--console-schema", schema)
    assert code == 0, err
    assert out.strip().endswith(f"The console keeps its own tables apart, in '{schema}'.")


def test_the_setting_keeps_them_there_too(run, app_paths, members_db, schema):
    save_settings(app_paths, Settings(mapping=MAPPING, console_schema=schema,
                                      create_console_tables=True))
    before = billing_tables(members_db)
    first = backup(run, members_db)
    assert billing_tables(members_db) == before
    assert "auto_backup_logs" in console_tables(members_db, schema)
    assert backup(run, members_db)["skipped"]
    assert first["path"]


def test_without_consent_nothing_is_made_and_the_sentence_names_the_schema(
        run, members_db, schema):
    code, out, err = run("backup", "--db", members_db, "--org", "ACME", "--user", "bob",
                         "--console-schema", schema)
    assert code == 1 and not out
    assert err.strip().splitlines()[-1].startswith(
        f"desktop-backup: The console keeps its own tables in '{schema}', and would make them "
        "there (auto_backup_logs, ")
    assert err.strip().endswith("so nothing was done; run again with --create-console-tables, "
                                'or set "create_console_tables": true in the settings, to '
                                "allow it.")
    assert console_tables(members_db, schema) == set()
    assert not {"auto_backup_logs", "desktop_backup_audit"} & billing_tables(members_db)


def test_without_a_schema_the_tables_stay_beside_the_billing_tables(run, members_db):
    backup(run, members_db, "--create-console-tables")
    assert {"auto_backup_logs", "desktop_backup_audit"} <= billing_tables(members_db)
    url = make_url(members_db)
    if url.get_backend_name() == "sqlite":
        assert sorted(p.name for p in Path(url.database).parent.glob("*.sqlite")) == [
            Path(url.database).name]
    assert not Settings().console_schema


@pytest.mark.parametrize("name", ["main", "a-b", "x; DROP TABLE users"])
def test_a_name_that_cannot_be_a_schema_is_refused_before_anything_is_done(
        run, sqlite_demo_db, name):
    code, out, err = run("list", "--db", sqlite_demo_db, "--org", "1", "--console-schema",
                         name)
    assert code == 2 and not out
    assert f"'{name}' cannot name the console's schema" in err


@pytest.mark.parametrize("dialect", ["mysql"])
def test_a_console_database_on_mariadb_serves_one_billing_database(
        run, members_db, schema, dialect, tmp_path):
    backup(run, members_db, "--console-schema", schema, "--create-console-tables")
    with fresh_database(dialect, tmp_path) as other:
        load_membership_schema(other)
        code, out, err = run("backup", "--db", other, "--org", "ACME", "--user", "bob",
                             "--console-schema", schema, "--create-console-tables")
        assert code == 1 and not out
        assert err.strip().endswith(
            f"The console's tables in '{schema}' belong to the billing database "
            f"'{make_url(members_db).database}', not '{make_url(other).database}'; choose "
            "another console schema for this one, so that their backup histories are never "
            "mixed.")
    assert audit_actions(members_db, schema) == [("backup", "success")]


@pytest.fixture
def limited_pg_user(members_db):
    """The billing database's address as a user who may read and write its tables but not
    make a schema in it (the usual grant for an application's account)."""
    role = f"clerk_{uuid.uuid4().hex[:8]}"
    engine = create_engine(members_db, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        conn.exec_driver_sql(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
    try:
        yield make_url(members_db).set(username=role).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
        engine.dispose()


@pytest.mark.parametrize("dialect", ["postgres"])
def test_a_schema_the_user_may_not_make_is_one_sentence_and_nothing_changes(
        run, members_db, limited_pg_user, dialect):
    before = billing_tables(members_db)
    code, out, err = run("backup", "--db", limited_pg_user, "--org", "ACME", "--user", "bob",
                         "--console-schema", "console", "--create-console-tables")
    assert code == 1 and not out
    last = err.strip().splitlines()[-1]
    assert last.startswith("desktop-backup: The console could not make the schema 'console' "
                           "for its own tables (")
    assert last.endswith("make it, or let the database user make it, or choose another "
                         "console schema.")
    assert billing_tables(members_db) == before
    assert console_tables(members_db, "console") == set()
