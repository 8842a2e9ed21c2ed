"""The demo billing database: shaped like the real one, deterministic, safe to create twice."""

from __future__ import annotations

import json

from sqlalchemy import create_engine, inspect, text

from desktop_backup.cli import main
from desktop_backup.demo import DEMO_ORGANIZATIONS, build_schema, generate_rows


def _count(conn, table, where=""):
    return conn.execute(text(f"SELECT COUNT(*) FROM {table} {where}")).scalar_one()


def test_demo_loads_on_every_dialect_with_the_real_shape(demo_db):
    engine = create_engine(demo_db)
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        assert {"organizations", "users", "user_permissions", "email_otps", "companies",
                "states", "hsn_codes", "subscription_plans",
                "stock_transfer_outgoing_transactions",
                "stock_transfer_outgoing_transaction_items"} <= tables
        assert "stock_transfers" not in tables and "supplier_ledgers" not in tables
        columns = {c["name"] for c in inspect(conn).get_columns("customers")}
        assert "organization_id" in columns
        # Business tables mostly carry organization_id without a foreign key.
        fks = inspect(conn).get_foreign_keys("customers")
        assert not [fk for fk in fks if fk["referred_table"] == "organizations"]
        assert _count(conn, "organizations") == 3
        assert _count(conn, "users", "WHERE organization_id IS NULL AND role = 'super_admin'") == 1
        assert _count(conn, "organizations", "WHERE status = 'suspended'") == 1
        assert _count(conn, "users", "WHERE is_active = false") == 1
        password = conn.execute(text("SELECT password FROM users LIMIT 1")).scalar_one()
        assert password.startswith("$2y$12$")
        # Decimals come back exactly, never through float.
        mrp = conn.execute(text("SELECT mrp FROM items ORDER BY id LIMIT 1")).scalar_one()
        assert str(mrp) == str(generate_rows(0.05)["items"][0]["mrp"])
    engine.dispose()


def test_every_organization_has_one_user_of_each_kind():
    rows = generate_rows()
    for org_id, _org in enumerate(DEMO_ORGANIZATIONS, start=1):
        users = [u for u in rows["users"] if u["organization_id"] == org_id]
        roles = {u["role"] for u in users if u["is_active"]}
        assert {"admin", "manager", "staff"} <= roles
        assert sum(u["is_organization_owner"] for u in users) == 1


def test_sizes_differ_and_the_largest_has_over_fifty_thousand_rows():
    rows = generate_rows()
    per_org = {1: 0, 2: 0, 3: 0}
    for table_rows in rows.values():
        for row in table_rows:
            if row.get("organization_id") in per_org:
                per_org[row["organization_id"]] += 1
    assert per_org[1] >= 50_000
    assert per_org[1] > 5 * per_org[2] > 25 * per_org[3]


def test_generation_is_deterministic():
    first, second = generate_rows(0.05), generate_rows(0.05)
    strip = lambda rows: {  # noqa: E731 - password hashes are salted, everything else is fixed
        t: [{k: v for k, v in r.items() if k != "password"} for r in rs] for t, rs in rows.items()}
    assert strip(first) == strip(second)


def test_demo_command_twice_neither_duplicates_nor_damages(tmp_path, app_paths, capsys):
    target = tmp_path / "demo.sqlite"
    assert main(["demo", "--path", str(target), "--json"], paths=app_paths) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["created"] is True and first["url"].endswith("demo.sqlite")
    assert any(login["username"] == "superadmin" for login in first["logins"])
    engine = create_engine(first["url"])
    with engine.connect() as conn:
        before = {t: _count(conn, t) for t in ("users", "sale_transactions", "items")}
    assert main(["demo", "--path", str(target), "--json"], paths=app_paths) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["created"] is False
    with engine.connect() as conn:
        assert {t: _count(conn, t) for t in before} == before
    engine.dispose()


def test_demo_refuses_to_overwrite_a_foreign_file(tmp_path, app_paths, capsys):
    target = tmp_path / "notes.sqlite"
    target.write_text("my shop's notes")
    assert main(["demo", "--path", str(target)], paths=app_paths) == 1
    assert "demo" in capsys.readouterr().err
    assert target.read_text() == "my shop's notes"


def test_schema_has_tables_reached_only_through_a_parent():
    md = build_schema()
    for name in ("user_permissions", "email_otps", "sale_return_transaction_items",
                 "stock_transfer_outgoing_transaction_items"):
        table = md.tables[name]
        assert "organization_id" not in table.c
        assert table.foreign_keys
