"""Declared ownership on schemas nobody here wrote: the map, its checks, the backup's rows
against a truth written in plain SQL, nothing left out silently, and restores after a
normal day's business."""

from __future__ import annotations

import json
import zipfile
from dataclasses import replace

import pytest
from sqlalchemy import create_engine, text

from desktop_backup.archive import MANIFEST
from desktop_backup.backup import run_backup, write_archive
from desktop_backup.cli import main
from desktop_backup.config import SchemaMapping
from desktop_backup.db import reflect
from desktop_backup.errors import UsageError
from desktop_backup.opening import verify_archive
from desktop_backup.organizations import find_organization
from desktop_backup.ownership import Ownership
from desktop_backup.restore import apply_restore, check_restore
from desktop_backup.tenancy import discover_scope
from desktop_backup.usecases import ownership_report
from desktop_backup.work import Actor, Site
from tests.dbservers import fresh_database
from tests.restore_support import retable
from tests.tenant_schemas import SCHEMAS, TenantSchema, digests, true_count

ADMIN = Actor(1, "admin", "admin")
ROUND_TRIP_DIALECTS = ("sqlite", "mysql", "postgres")


@pytest.fixture(params=ROUND_TRIP_DIALECTS)
def server(request, tmp_path):
    if request.param != "sqlite":
        request.node.add_marker(getattr(pytest.mark, request.param))
    with fresh_database(request.param, tmp_path) as url:
        yield url


def _built(url: str, schema: TenantSchema):
    engine = create_engine(url)
    schema.create(engine)
    return engine


def _org(engine, schema: TenantSchema, key=1):
    with engine.connect() as conn:
        return find_organization(conn, schema.mapping, key)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_backup_holds_exactly_the_true_rows_and_names_every_other_table(name, server,
                                                                        tmp_path):
    schema = SCHEMAS[name]()
    engine = _built(server, schema)
    site = Site(engine, schema.mapping)
    manifest = write_archive(site, 1, tmp_path / "b.zip", ADMIN, trigger="manual")
    saved = {t.name: t.rows for t in manifest.tables}
    assert saved == {table: true_count(engine, schema, 1, table) for table in schema.truth}
    table_map = manifest.scope["map"]
    assert {n for n, r in table_map.items() if r["status"] == "shared"} >= set(schema.shared)
    assert sorted(manifest.scope["left_out"]) == sorted(schema.left_out)
    report = verify_archive(tmp_path / "b.zip")
    assert report.ok
    for left in schema.left_out:
        assert left in report.message
    engine.dispose()


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_restore_after_a_normal_day_gives_back_the_tenant_and_touches_nobody_else(
        name, server, tmp_path):
    schema = SCHEMAS[name]()
    engine = _built(server, schema)
    site = Site(engine, schema.mapping)
    archive = tmp_path / "b.zip"
    write_archive(site, 1, archive, ADMIN, trigger="manual")
    at_backup = digests(engine, schema, 1)
    schema.normal_day(engine)
    with engine.begin() as conn:  # meanwhile the shared tables and the other tenant change
        if "users" in schema.shared:
            conn.execute(text("UPDATE users SET password = 'changed' WHERE id = 2"))
        for table in schema.shared:
            conn.execute(text(f"UPDATE {table} SET id = id WHERE id = 1"))
    after_day = digests(engine, schema, 1)
    assert after_day["mine"] != at_backup["mine"]
    org = _org(engine, schema)
    plan = check_restore(site, org, archive, restorer=ADMIN)
    assert plan.ok, plan.message
    assert "another organization" not in " ".join(plan.warnings)
    apply_restore(site, org, plan, ADMIN, tmp_path / "folder")
    restored = digests(engine, schema, 1)
    assert restored["mine"] == at_backup["mine"]
    assert restored["others"] == at_backup["others"]  # nothing dangling, nobody else touched
    assert restored["shared"] == after_day["shared"]  # a changed password stays changed
    engine.dispose()


def test_shared_users_with_a_legacy_tenant_column_never_enter_the_archive(tmp_path):
    schema = SCHEMAS["invoicing"]()
    with fresh_database("sqlite", tmp_path) as url:
        engine = _built(url, schema)
        write_archive(Site(engine, schema.mapping), 1, tmp_path / "b.zip", ADMIN,
                      trigger="manual")
        with zipfile.ZipFile(tmp_path / "b.zip") as zf:
            members = zf.namelist()
            manifest = json.loads(zf.read(MANIFEST))
        assert not any("users" in m and "user_company" not in m for m in members)
        assert manifest["scope"]["map"]["users"]["status"] == "shared"
        assert manifest["scope"]["map"]["app_settings"] == {
            "status": "left out", "reason": "no organization column and no foreign key path "
            "to one; declare it in the ownership map"}
        engine.dispose()


FORGERIES = [
    ("invoicing", "email_logs", lambda rows: rows[0].update(mailable_id=201),
     "mailable_id (201) is not one of this organization's invoices"),
    ("invoicing", "email_logs", lambda rows: rows[0].update(mailable_type="user"),
     "of type 'user'"),
    ("invoicing", "addresses", lambda rows: rows[0].update(company_id=2),
     "holds a row of another organization (company_id 2)"),
    ("tracker", "activity", lambda rows: rows[0].update(subject_id="21"),
     "is not one of this organization's projects"),
    ("tracker", "comments", lambda rows: rows[0].update(project_id=None),
     "name no owner at all"),
]


@pytest.mark.parametrize(("name", "table", "change", "sentence"), FORGERIES)
def test_the_archive_is_judged_by_the_live_map_never_by_what_it_claims(
        name, table, change, sentence, tmp_path):
    schema = SCHEMAS[name]()
    with fresh_database("sqlite", tmp_path) as url:
        engine = _built(url, schema)
        site = Site(engine, schema.mapping)
        write_archive(site, 1, tmp_path / "b.zip", ADMIN, trigger="manual")
        forged = retable(tmp_path / "b.zip", tmp_path / "forged.zip", table, change)
        before = digests(engine, schema, 1)
        plan = check_restore(site, _org(engine, schema), forged, restorer=ADMIN)
        assert not plan.ok and sentence in plan.message
        assert digests(engine, schema, 1) == before
        engine.dispose()


BAD = [
    ({"nowhere": "shared"}, "names the table nowhere, which the database does not have"),
    ({"roles": {"column": "tenant"}}, "names the column roles.tenant"),
    ({"addresses": {"parents": ["customer_id -> users.id"]}, "users": "shared"},
     "goes through users, which is shared"),
    ({"invoices": {"parents": ["customer_id -> customers.id"]},
      "customers": {"parents": ["id -> invoices.customer_id"]}},
     "goes round in a circle"),
    ({"email_logs": {"polymorphic": {"type": "mailable_type", "id": "mailable_id",
                                     "types": {"invoice": "bills"}}}},
     "names the table bills, which the database does not have"),
    ({"email_logs": {"polymorphic": {"type": "mailable_type", "id": "mailable_id",
                                     "types": {}}}}, "gives no parent table"),
    ({"companies": "shared"}, "declares companies, the organizations table itself"),
    ({"desktop_backup_audit": {"column": "organization_id"}},
     "declares desktop_backup_audit, one of the console's own tables"),
    ({"roles": {"parents": ["scope companies.id"]}}, "write it as"),
]


@pytest.mark.parametrize(("declared", "sentence"), BAD)
def test_a_wrong_declaration_is_one_sentence_at_scope_time_and_before_a_backup(
        declared, sentence, tmp_path, app_paths, capsys):
    schema = SCHEMAS["invoicing"]()
    with fresh_database("sqlite", tmp_path) as url:
        engine = _built(url, schema)
        file = tmp_path / "ownership.json"
        file.write_text(json.dumps(declared))
        code = main(["scope", "--db", url, "--tenant-table", "companies", "--tenant-column",
                     "company_id", "--ownership", str(file)], paths=app_paths)
        err = capsys.readouterr().err
        assert code == 2 and sentence in err and err.count("\n") == 1
        with pytest.raises(UsageError, match=sentence.split(",")[0]):
            mapping = replace(schema.mapping, ownership=Ownership.from_dict(declared)
                              .over(schema.mapping.ownership))
            run_backup(Site(engine, mapping), _org(engine, schema), ADMIN, tmp_path / "out",
                       trigger="manual")
        assert not (tmp_path / "out").exists()
        engine.dispose()


def test_rows_of_a_type_the_map_gives_to_no_table_stop_scope_and_backup(tmp_path, app_paths,
                                                                       capsys):
    schema = SCHEMAS["invoicing"]()
    with fresh_database("sqlite", tmp_path) as url:
        engine = _built(url, schema)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO email_logs VALUES (9, 'user', 1, 'welcome')"))
        file = tmp_path / "ownership.json"
        file.write_text(json.dumps(schema.mapping.ownership.to_dict()))
        code = main(["scope", "--db", url, "--tenant-table", "companies", "--tenant-column",
                     "company_id", "--ownership", str(file)], paths=app_paths)
        sentence = "Table email_logs holds rows of a type the ownership map gives to no table"
        assert code == 2 and sentence in capsys.readouterr().err
        with pytest.raises(UsageError, match=sentence):
            run_backup(Site(engine, schema.mapping), _org(engine, schema), ADMIN,
                       tmp_path / "out", trigger="manual")
        engine.dispose()


def test_scope_command_lists_every_table_with_how_and_row_counts(tmp_path, app_paths, capsys):
    schema = SCHEMAS["invoicing"]()
    with fresh_database("sqlite", tmp_path) as url:
        engine = _built(url, schema)
        file = tmp_path / "ownership.json"
        file.write_text(json.dumps({"ownership": schema.mapping.ownership.to_dict()}))
        code = main(["scope", "--db", url, "--org", "ACME", "--json", "--tenant-table",
                     "companies", "--tenant-column", "company_id", "--ownership", str(file)],
                    paths=app_paths)
        out = json.loads(capsys.readouterr().out)
        assert code == 0
        lines = {t["table"]: t for t in out["tables"]}
        assert set(lines) == set(reflect_names(engine))
        assert lines["email_logs"]["rows"] == true_count(engine, schema, 1, "email_logs")
        assert lines["addresses"]["how"] == (
            "addresses.company_id = organization id or addresses.customer_id -> "
            "customers.id (through its parent rows)")
        assert lines["users"]["status"] == "shared"
        assert out["left_out"] == ["app_settings"]
        engine.dispose()


def reflect_names(engine) -> list[str]:
    with engine.connect() as conn:
        return list(reflect(conn).tables)


def test_settings_keep_the_ownership_beside_the_mapping():
    from desktop_backup.config import Settings
    declared = SCHEMAS["tracker"]().mapping.ownership
    settings = Settings(mapping=SchemaMapping(ownership=declared))
    data = settings.to_dict()
    assert "ownership" not in data["mapping"] and data["ownership"]["audit_trail"] == {
        "left_out": "rotated by the application itself"}
    assert Settings.from_dict(json.loads(json.dumps(data))).mapping.ownership == declared


def test_the_billing_database_needs_no_declaration():
    from desktop_backup.demo import build_schema
    scope = discover_scope(build_schema(), SchemaMapping())
    assert scope.unplaced() == {} and "states" in scope.shared


def test_report_counts_match_the_truth_on_each_schema(tmp_path):
    for name, build in SCHEMAS.items():
        schema = build()
        with fresh_database("sqlite", tmp_path) as url:
            engine = _built(url, schema)
            report = ownership_report(Site(engine, schema.mapping), 2)
            counts = {line.table: line.rows for line in report.backed_up}
            assert counts == {t: true_count(engine, schema, 2, t) for t in schema.truth}, name
            engine.dispose()


def test_every_backup_names_the_tables_it_left_out(tmp_path):
    schema = SCHEMAS["invoicing"]()
    with fresh_database("sqlite", tmp_path) as url:
        engine = _built(url, schema)
        site = Site(engine, schema.mapping)
        org = _org(engine, schema)
        said = "1 table left out: app_settings"
        for _ in range(2):  # at every backup, not only the first
            result = run_backup(site, org, ADMIN, tmp_path / "out", trigger="manual",
                                force=True)
            assert result.ok and said in result.message
            with engine.connect() as conn:
                last = conn.execute(text("SELECT message FROM desktop_backup_audit "
                                         "ORDER BY id DESC LIMIT 1")).scalar_one()
            assert said in last
        assert said in verify_archive(result.path).message
        plan = check_restore(site, org, result.path, restorer=ADMIN)
        assert plan.ok and said in plan.message
        engine.dispose()


def test_an_archive_that_holds_users_never_writes_them_once_the_map_says_shared(tmp_path):
    schema = SCHEMAS["invoicing"]()
    with fresh_database("sqlite", tmp_path) as url:
        engine = _built(url, schema)
        # Made before anyone declared users shared: reflection took users.company_id at its word.
        naive = replace(schema.mapping, ownership=Ownership(tuple(
            d for d in schema.mapping.ownership.declarations if d.table != "users")))
        manifest = write_archive(Site(engine, naive), 1, tmp_path / "old.zip", ADMIN,
                                 trigger="manual")
        assert manifest.table("users") is not None and manifest.table("users").rows == 2
        with engine.begin() as conn:
            conn.execute(text("UPDATE users SET password = 'changed' WHERE id = 2"))
        site = Site(engine, schema.mapping)
        org = _org(engine, schema)
        plan = check_restore(site, org, tmp_path / "old.zip", restorer=ADMIN)
        assert plan.ok and "users" in plan.skipped
        assert any("Table users is shared by every organization" in w for w in plan.warnings)
        apply_restore(site, org, plan, ADMIN, tmp_path / "folder")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT password FROM users WHERE id = 2")).scalar_one() \
                == "changed"
        engine.dispose()


def test_rows_that_reflections_one_path_misses_are_said_at_scope_time_and_every_backup(
        tmp_path):
    schema = SCHEMAS["tracker"]()
    undeclared = replace(schema.mapping, ownership=Ownership(tuple(
        d for d in schema.mapping.ownership.declarations if d.table not in (
            "comments", "activity"))))
    with fresh_database("sqlite", tmp_path) as url:
        engine = _built(url, schema)
        site = Site(engine, undeclared)
        said = ("4 rows of comments have no project_id but a ticket_id and are in no backup; "
                "declare the parents of comments to include them")
        assert ownership_report(site, 1).stranded == [said]
        result = run_backup(site, _org(engine, schema), ADMIN, tmp_path / "out",
                            trigger="manual")
        assert said in result.message
        with engine.connect() as conn:
            assert said in conn.execute(text("SELECT message FROM desktop_backup_audit "
                                             "ORDER BY id DESC LIMIT 1")).scalar_one()
        assert ownership_report(Site(engine, schema.mapping), 1).stranded == []
        engine.dispose()


def test_a_wrong_declaration_in_the_settings_file_names_the_file(app_paths):
    from desktop_backup.config import load_settings
    app_paths.config_dir.mkdir(parents=True)
    app_paths.settings_file.write_text(json.dumps({"ownership": {"roles": {"colum": "x"}}}))
    with pytest.raises(UsageError, match=r"settings file .* is damaged \(The ownership of "
                                         r"roles has unknown keys: colum\.\)"):
        load_settings(app_paths)


def test_activity_left_behind_by_a_deleted_ticket_comes_back_with_it(server, tmp_path):
    """Issue 20, point 5, with ids kept as text: the application deletes tenant One's ticket
    11 and its comment, and leaves their activity ('ticket', '11'; 'comment', '111'). The
    backup brings both parents back, so that activity is One's own: the restore gives it the
    backup's rows, counts them as Changed, and touches nobody else's."""
    schema = SCHEMAS["tracker"]()
    engine = _built(server, schema)
    site = Site(engine, schema.mapping)
    archive = tmp_path / "b.zip"
    write_archive(site, 1, archive, ADMIN, trigger="manual")
    at_backup = digests(engine, schema, 1)
    with engine.begin() as conn:
        conn.execute(text("UPDATE activity SET what = 'edited' WHERE id = 111"))
        conn.execute(text("DELETE FROM comments WHERE ticket_id = 11"))
        conn.execute(text("DELETE FROM tickets WHERE id = 11"))
    org = _org(engine, schema)
    plan = check_restore(site, org, archive, restorer=ADMIN)
    assert plan.ok, plan.message
    activity = next(t for t in plan.tables if t.table == "activity")
    assert activity.to_update == 2 and activity.to_insert == 0  # activity 111 and 112
    result = apply_restore(site, org, plan, ADMIN, tmp_path / "folder")
    assert result.changes == plan.changes
    restored = digests(engine, schema, 1)
    assert restored["mine"] == at_backup["mine"]
    assert restored["others"] == at_backup["others"]
    engine.dispose()


def test_orphans_are_rows_whose_every_named_parent_is_gone_and_nothing_else(tmp_path):
    """OrganizationScope.orphaned, on SQLite (which lets a row name a missing parent): only
    a row that names a parent, and whose every named parent is gone, with no tenant column of
    its own set, may be adopted by a restore that brings its parents back."""
    schema = SCHEMAS["invoicing"]()
    engine = _built(f"sqlite:///{tmp_path / 'o.sqlite'}", schema)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO addresses (id, company_id, customer_id, line) VALUES "
            "(901, NULL, 999, 'customer gone'), (902, 2, 999, 'own tenant column set'), "
            "(903, NULL, 101, 'customer there')"))
        conn.execute(text(
            "INSERT INTO email_logs (id, mailable_type, mailable_id, subject) VALUES "
            "(9001, 'invoice', 999, 'invoice gone'), (9002, 'invoice', 101, 'invoice there'), "
            "(9003, 'fax', 999, 'type nobody knows'), (9004, NULL, NULL, 'no pair'), "
            "(9005, 'estimate', 999, 'estimate gone')"))
        scope = discover_scope(reflect(conn), schema.mapping)
        found = {}
        for name in ("addresses", "email_logs", "invoices"):
            orphaned = scope.orphaned(scope.get(name))
            found[name] = None if orphaned is None else set(conn.execute(
                scope.metadata.tables[name].select().where(orphaned)).scalars())
    assert found == {"addresses": {901}, "email_logs": {9001, 9005}, "invoices": None}
    engine.dispose()


@pytest.mark.parametrize(("parent", "refused"), [(101, False), (999, True)])
def test_an_orphan_holding_a_unique_value_of_the_backup_goes_only_with_its_parent(
        tmp_path, parent, refused):
    """Subjects are unique here. A mail left behind by invoice 101 (deleted; the backup
    brings it back) holds the subject the backup gives mail 1010: it is Tenant 1's, and the
    backup lacks it, so it goes before 1010 gets its subject back. A mail of invoice 999,
    which is nowhere, is nobody's: the restore is refused before anything changes."""
    schema = SCHEMAS["invoicing"]()
    engine = _built(f"sqlite:///{tmp_path / 'u.sqlite'}", schema)
    with engine.begin() as conn:
        conn.execute(text("UPDATE email_logs SET subject = 'mail ' || id"))
        conn.execute(text("CREATE UNIQUE INDEX one_subject ON email_logs (subject)"))
    site = Site(engine, schema.mapping)
    archive = tmp_path / "b.zip"
    write_archive(site, 1, archive, ADMIN, trigger="manual")
    at_backup = digests(engine, schema, 1)
    with engine.begin() as conn:
        conn.execute(text("UPDATE email_logs SET subject = 'edited' WHERE id = 1010"))
        conn.execute(text("INSERT INTO email_logs (id, mailable_type, mailable_id, subject) "
                          "VALUES (9001, 'invoice', :p, 'mail 1010')"), {"p": parent})
        conn.execute(text("DELETE FROM invoices WHERE id = 101"))
    before = digests(engine, schema, 1)
    plan = check_restore(site, _org(engine, schema), archive, restorer=ADMIN)
    if refused:
        assert not plan.ok
        assert plan.message == (
            "Table email_logs: the backup's row with subject 'mail 1010' clashes with a row "
            "(id 9001) that belongs to another organization (or to none); restoring would "
            "overwrite it, so the restore was refused.")
        assert digests(engine, schema, 1) == before
    else:
        assert plan.ok, plan.message
        apply_restore(site, _org(engine, schema), plan, ADMIN, tmp_path / "folder")
        assert digests(engine, schema, 1) == at_backup
    engine.dispose()
