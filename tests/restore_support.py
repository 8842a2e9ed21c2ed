"""What the restore tests share: the demo organization, content digests of its rows, a bad day
to undo, backups to restore, and ways to edit an archive the way an attacker would."""

from __future__ import annotations

import hashlib
import json
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import delete, inspect, select, text

from desktop_backup.archive import MANIFEST
from desktop_backup.backup import run_backup
from desktop_backup.config import SchemaMapping
from desktop_backup.db import reflect
from desktop_backup.organizations import find_organization
from desktop_backup.restore.check import restore_order
from desktop_backup.seedformat import APP_DATABASE_MEMBER
from desktop_backup.tenancy import CONSOLE_TABLES, discover_scope
from desktop_backup.work import Actor, Site
from tests.clock import FakeClock

MAPPING = SchemaMapping()


ADMIN = Actor(3, "medp.admin", "admin")


SUPER = Actor(1, "superadmin", "super_admin")


def org_of(engine, key: str = "MEDP"):
    with engine.connect() as conn:
        return find_organization(conn, MAPPING, key)


def _hash_rows(rows) -> str:
    return hashlib.sha256("\n".join(sorted(repr(tuple(r)) for r in rows)).encode()).hexdigest()


def org_digest(engine, org_id: int) -> dict[str, str]:
    """Every row the organization owns, per table, with the database's own types."""
    with engine.connect() as conn:
        scope = discover_scope(reflect(conn), MAPPING)
        return {ts.name: _hash_rows(conn.execute(
            select(scope.metadata.tables[ts.name]).where(scope.predicate(ts, org_id))))
            for ts in scope.tables}


def db_digest(engine) -> dict[str, str]:
    """Every row of every table (but the console's own bookkeeping), as the driver reads it."""
    with engine.connect() as conn:
        quote = conn.dialect.identifier_preparer.quote
        return {name: _hash_rows(conn.execute(text(f"SELECT * FROM {quote(name)}")))
                for name in inspect(conn).get_table_names() if name not in CONSOLE_TABLES}


def run(engine, sql: str, **params) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def scalar(engine, sql: str):
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def wipe_and_change(engine) -> None:
    """What a bad day does to MEDP: deletions (with cascades), edits, new rows."""
    run(engine, "DELETE FROM sale_transactions WHERE organization_id = 1 AND id % 3 = 0 AND id "
                "NOT IN (SELECT sale_transaction_id FROM sale_return_transactions WHERE "
                "sale_transaction_id IS NOT NULL)")
    run(engine, "DELETE FROM stock_ledgers WHERE organization_id = 1")
    run(engine, "UPDATE customers SET name = 'overwritten', opening_balance = 0 "
                "WHERE organization_id = 1")
    run(engine, "INSERT INTO customers (organization_id, name, opening_balance) "
                "VALUES (1, 'created after the backup', 10)")
    run(engine, "DELETE FROM users WHERE username = 'medp.staff'")  # cascades to permissions
    run(engine, "UPDATE batches SET quantity = quantity + 1 WHERE organization_id = 1")


def backup(engine, folder: Path, org_key: str = "MEDP", fmt: str = "native") -> Path:
    org = org_of(engine, org_key)
    result = run_backup(Site(engine, MAPPING, FakeClock()), org, ADMIN, folder, trigger="manual",
                        fmt=fmt, force=True)
    return result.path


def hard_shapes(engine, dialect: str) -> None:
    """Self-references pointing forward, a cycle between two tables, id 0, awkward values."""
    big = "INTEGER" if dialect == "sqlite" else "BIGINT"
    pk = ("INTEGER PRIMARY KEY" if dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
          if dialect == "postgres" else "BIGINT AUTO_INCREMENT PRIMARY KEY")
    blob = {"sqlite": "BLOB", "mysql": "BLOB", "postgres": "BYTEA"}[dialect]
    moment = {"sqlite": "DATETIME", "mysql": "DATETIME(6)", "postgres": "TIMESTAMP(6)"}[dialect]
    ddl = [
        f"CREATE TABLE item_groups (id {pk}, organization_id {big}, name VARCHAR(50), "
        f"parent_id {big} NULL, FOREIGN KEY (parent_id) REFERENCES item_groups(id))",
        f"CREATE TABLE shelves (id {pk}, organization_id {big}, name VARCHAR(50), "
        f"head_bin_id {big} NULL" + (", FOREIGN KEY (head_bin_id) REFERENCES bins(id))"
                                     if dialect == "sqlite" else ")"),
        f"CREATE TABLE bins (id {pk}, organization_id {big}, shelf_id {big} NOT NULL, "
        f"label VARCHAR(50), FOREIGN KEY (shelf_id) REFERENCES shelves(id) ON DELETE CASCADE)",
        f"CREATE TABLE value_samples (id {pk}, organization_id {big}, amount NUMERIC(30,10), "
        f"moment {moment}, label VARCHAR(100), blob_data {blob}, flag BOOLEAN, doc "
        f"{'JSON' if dialect != 'sqlite' else 'TEXT'}, ratio "
        f"{'DOUBLE PRECISION' if dialect == 'postgres' else 'DOUBLE' if dialect == 'mysql' else 'REAL'})",  # noqa: E501
    ]
    if dialect != "sqlite":
        ddl.append("ALTER TABLE shelves ADD CONSTRAINT shelves_head_bin FOREIGN KEY "
                   "(head_bin_id) REFERENCES bins(id)")
    with engine.begin() as conn:
        for statement in ddl:
            conn.execute(text(statement))
        if dialect == "mysql":
            conn.execute(text("SET SESSION sql_mode = CONCAT(@@sql_mode, "
                              "',NO_AUTO_VALUE_ON_ZERO')"))
        conn.execute(text("INSERT INTO item_groups (id, organization_id, name, parent_id) VALUES "
                          "(3, 1, 'root', NULL), (1, 1, 'child of a later id', NULL), "
                          "(0, 1, 'id zero', NULL), (5, 2, 'CITY group', NULL)"))
        conn.execute(text("UPDATE item_groups SET parent_id = 3 WHERE id IN (0, 1)"))
        conn.execute(text("INSERT INTO shelves (id, organization_id, name) VALUES "
                          "(1, 1, 'A'), (2, 2, 'CITY shelf')"))
        conn.execute(text("INSERT INTO bins (id, organization_id, shelf_id, label) VALUES "
                          "(10, 1, 1, 'A-10'), (20, 2, 2, 'CITY bin')"))
        conn.execute(text("UPDATE shelves SET head_bin_id = 10 WHERE id = 1"))
        conn.execute(text(
            "INSERT INTO value_samples (id, organization_id, amount, moment, label, blob_data, "
            "flag, doc, ratio) VALUES (1, 1, '12345678901234567890.1234567890', "
            "'2026-03-29 02:30:00.123456', :label, :blob, :flag, :doc, 0.1)"),
            {"label": "Śrī 🚀 \"q\" \\ /", "blob": b"\x00\xff\x10", "flag": True,
             "doc": '{"a": [1, 2],  "s": "x/y"}'})


def take_username_elsewhere(engine, username: str) -> None:
    """Another organization (CITY) creates a user with the backup's username: a clash."""
    run(engine, "INSERT INTO users (organization_id, is_organization_owner, full_name, "
                "username, email, password, role, is_active) VALUES (2, :no, 'Taken', "
                ":username, 'someone@else.example', 'x', 'staff', :yes)",
        no=False, yes=True, username=username)


def delete_organization(engine, org_id: int) -> None:
    """Every row the organization owns, children first (the 'lost everything' state)."""
    with engine.begin() as conn:
        metadata = reflect(conn)
        scope = discover_scope(metadata, MAPPING)
        for name in reversed(restore_order(metadata, scope.names())):
            conn.execute(delete(metadata.tables[name]).where(
                scope.predicate(scope.get(name), org_id)))


def keep_seal(src: Path, dst: Path) -> Path:
    """Put the original's zip comment (its seal) back on an edited copy."""
    with zipfile.ZipFile(src) as zin:
        comment = zin.comment
    with zipfile.ZipFile(dst, "a") as zout:
        zout.comment = comment
    return dst


def rebuild(src: Path, dst: Path, *, manifest: Callable[[dict], dict] | None = None,
            members: dict[str, bytes] | None = None, extra: list[tuple] = (),
            drop: tuple[str, ...] = ()) -> Path:
    """A copy of the archive `src` with its manifest, members or extra members changed."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are written on purpose
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = (members or {}).get(info.filename, zin.read(info.filename))
            if info.filename == MANIFEST and manifest is not None:
                data = json.dumps(manifest(json.loads(data))).encode()
            zout.writestr(info.filename, data)
        for name, data in extra:
            zout.writestr(name, data)
    return dst


def retable(src: Path, dst: Path, table: str, change: Callable[[list[dict]], None]) -> Path:
    """Change a table's rows and make the manifest's count and checksum agree: a forgery
    that only the restore's own checks can catch."""
    with zipfile.ZipFile(src) as zin:
        manifest = json.loads(zin.read(MANIFEST))
        entry = next(t for t in manifest["tables"] if t["name"] == table)
        names = [c["name"] for c in entry["columns"]]
        rows = [dict(zip(names, r, strict=True)) for line in zin.read(entry["member"]).splitlines()
                for r in json.loads(line)]
    change(rows)
    data = (json.dumps([[r[n] for n in names] for r in rows]) + "\n").encode()
    entry.update(rows=len(rows), sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    manifest["totals"]["rows"] = sum(t["rows"] for t in manifest["tables"])
    return rebuild(src, dst, manifest=lambda _m: manifest, members={entry["member"]: data})


def seed_json(src: Path) -> tuple[str, dict]:
    with zipfile.ZipFile(src) as zf:
        member = next(n for n in zf.namelist() if n.endswith(".json"))
        return member, json.loads(zf.read(member))


def write_seed(dst: Path, data: dict, member: str = APP_DATABASE_MEMBER) -> Path:
    return zip_with(dst, member, json.dumps(data).encode())


def zip_with(dst: Path, member: str, data: bytes) -> Path:
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, data)
    return dst
