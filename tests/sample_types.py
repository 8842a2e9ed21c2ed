"""A table of every column type the console must carry exactly, per dialect, with sample rows."""

from __future__ import annotations

from sqlalchemy import text

LABEL = "Śrī Medicals 🚀 दवा"


NOTE = 'a/b "quoted" \\ back'


SAMPLE_DDL = {
    "sqlite": ["CREATE TABLE value_samples (id INTEGER PRIMARY KEY, organization_id INTEGER, "
               "amount NUMERIC(20,6), big_amount NUMERIC(30,10), day DATE, moment DATETIME, "
               "label VARCHAR(100), note TEXT, blob_data BLOB, flag BOOLEAN, doc JSON, "
               "kind VARCHAR(1), ratio REAL)"],
    "mysql": ["CREATE TABLE value_samples (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
              "organization_id BIGINT, amount DECIMAL(20,6), big_amount DECIMAL(30,10), "
              "day DATE, moment DATETIME(6), stamp TIMESTAMP NULL, label VARCHAR(100), "
              "note TEXT, blob_data BLOB, flag TINYINT(1), doc JSON, kind ENUM('a','b'), "
              "ratio DOUBLE, opened TIME) CHARACTER SET utf8mb4"],
    "postgres": ["CREATE TYPE sample_kind AS ENUM ('a', 'b')",
                 "CREATE TABLE value_samples (id BIGINT PRIMARY KEY, organization_id BIGINT, "
                 "amount NUMERIC(20,6), big_amount NUMERIC(30,10), day DATE, "
                 "moment TIMESTAMP(6), stamp TIMESTAMPTZ, label VARCHAR(100), note TEXT, "
                 "blob_data BYTEA, flag BOOLEAN, doc JSON, kind sample_kind, "
                 "ratio DOUBLE PRECISION, opened TIME)"],
}


def insert_samples(conn, dialect):
    if dialect == "mysql":
        conn.execute(text("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO')"))
        conn.execute(text("SET time_zone = '+00:00'"))
    extra_cols = "" if dialect == "sqlite" else ", stamp, opened"
    extra_vals = "" if dialect == "sqlite" else ", '2026-03-29 01:30:00+00:00', '23:59:58'"
    if dialect == "mysql":
        extra_vals = ", '2026-03-29 01:30:00', '23:59:58'"
    conn.execute(text(
        f"INSERT INTO value_samples (id, organization_id, amount, big_amount, day, moment, "
        f"label, note, blob_data, flag, doc, kind, ratio{extra_cols}) VALUES (0, 1, "
        f"'0.000001', '12345678901234567890.1234567890', '2026-03-29', "
        f"'2026-03-29 02:30:00.123456', :label, :note, :blob, :flag, :doc, 'b', 0.1"
        f"{extra_vals})"),
        {"label": LABEL, "note": NOTE, "blob": b"\x00\xffdata", "flag": True,
         "doc": '{"a": [1, 2],  "s": "x/y"}'})
    conn.execute(text("INSERT INTO value_samples (id, organization_id) VALUES (1, 1), (2, 2)"))
