"""Probe (issue 21): could PostgreSQL itself turn an archive's JSON lines into rows faster
than our restore does in Python, and how does that compare with psql's COPY?

Loads every table member of a native archive into the organization's (emptied) tables:
each JSON line goes as it is into a staging table through COPY (its backslashes doubled),
and one INSERT ... SELECT per table takes the rows apart with jsonb_array_elements and the
columns' own casts. No check of any kind: this measures the floor of that engine, not an
engine. Foreign key triggers off (session_replication_role), as our restore runs when it
has proved the references itself.

    python bench/server_json_probe.py ARCHIVE postgresql+psycopg://postgres@127.0.0.1:5432/DB

ARCHIVE: a native backup of organization 1 of the wide bench database (from
``desktop-backup backup`` or ``backup.write_archive``); DB: a copy of that database with the
organization's rows deleted (``restore_bench.py`` leaves bench_restore_wide_s1 so after a
"deleted" run, or use its ``delete_rows``). It writes into DB and commits.
"""

from __future__ import annotations

import json
import sys
import time
import zipfile

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url


def main(archive: str, url: str) -> None:
    zf = zipfile.ZipFile(archive)
    manifest = json.loads(zf.read("manifest.json"))
    conn = psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(
        hide_password=False))
    tables = order(url, manifest["tables"])
    timings = {"stage": 0.0, "insert": 0.0}
    started = time.perf_counter()
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("CREATE TEMP TABLE stage (line text) ON COMMIT DROP")
        # kept as they are: compressing each long line (TOAST's default) doubled the staging
        conn.execute("ALTER TABLE stage ALTER line SET STORAGE EXTERNAL")
        for entry in tables:
            if not entry["rows"]:
                continue
            t = time.perf_counter()
            conn.execute("TRUNCATE stage")
            with conn.cursor() as cur, cur.copy("COPY stage (line) FROM STDIN") as copy:
                with zf.open(entry["member"]) as member:
                    for line in member:
                        copy.write(line.replace(b"\\", b"\\\\"))
            timings["stage"] += time.perf_counter() - t
            t = time.perf_counter()
            conn.execute(insert_sql(conn, entry))
            timings["insert"] += time.perf_counter() - t
    total = time.perf_counter() - started
    print(json.dumps({"total": round(total, 2), **{k: round(v, 2) for k, v in timings.items()}}))


def order(url: str, entries: list[dict]) -> list[dict]:
    """Parents first, as our restore orders them (foreign keys are off, but the order keeps
    the probe honest)."""
    from sqlalchemy import create_engine

    from desktop_backup.db import reflect
    from desktop_backup.restore.check import restore_order

    engine = create_engine(url)
    try:
        names = restore_order(reflect(engine), [e["name"] for e in entries])
    finally:
        engine.dispose()
    by_name = {e["name"]: e for e in entries}
    return [by_name[n] for n in names]


def insert_sql(conn, entry: dict) -> sql.Composed:
    types = dict(conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        [entry["name"]]).fetchall())
    values = []
    for i, column in enumerate(entry["columns"]):
        value = (sql.SQL("decode(r->>{}, 'base64')").format(i) if column["kind"] == "binary"
                 else sql.SQL("(r->>{})::{}").format(i, sql.SQL(types[column["name"]])))
        values.append(value)
    return sql.SQL("INSERT INTO {} ({}) SELECT {} FROM stage, jsonb_array_elements("
                   "stage.line::jsonb) AS r").format(
        sql.Identifier(entry["name"]),
        sql.SQL(", ").join(sql.Identifier(c["name"]) for c in entry["columns"]),
        sql.SQL(", ").join(values))


if __name__ == "__main__":
    main(*sys.argv[1:])
