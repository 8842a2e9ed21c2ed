"""Issue 20 end to end: a foreign multi-tenant schema declared in settings.json (mapping with
memberships and roles, and the ownership map), driven through the command line and its real
login: scope, a tenant admin's backup, a normal day's business, the restore, and who may act
for which company. Rows are judged by the plain-SQL truth in tests/tenant_schemas.py."""

from __future__ import annotations

import json
import zipfile

import pytest
from sqlalchemy import create_engine, inspect, text

from desktop_backup.archive import MANIFEST
from desktop_backup.cli import main
from tests.auth_support import php_bcrypt
from tests.restore_support import retable
from tests.tenant_schemas import (
    ACME,
    BOLT,
    CORE,
    CRATER_MAPPING,
    CRATER_OWNERSHIP,
    LOGIN_PASSWORD,
    crater,
    digests,
    true_count,
)


@pytest.fixture
def schema():
    return crater()


@pytest.fixture
def crater_db(empty_db, schema) -> str:
    engine = create_engine(empty_db)
    try:
        schema.create(engine)
    finally:
        engine.dispose()
    return empty_db


@pytest.fixture
def engine(crater_db):
    engine = create_engine(crater_db)
    yield engine
    engine.dispose()


def write_settings(app_paths, mapping=CRATER_MAPPING, ownership=CRATER_OWNERSHIP) -> None:
    """settings.json as a support engineer writes it: the mapping's keys and the map."""
    app_paths.config_dir.mkdir(parents=True, exist_ok=True)
    data = {"mapping": mapping, **({"ownership": ownership} if ownership else {})}
    app_paths.settings_file.write_text(json.dumps(data, indent=2))


@pytest.fixture
def run(app_paths, capsys, monkeypatch, tmp_path, crater_db):
    """`desktop-backup COMMAND --db <the crater database> ...`: (exit code, stdout, stderr)."""
    monkeypatch.setenv("DESKTOP_BACKUP_PASSWORD", LOGIN_PASSWORD)
    write_settings(app_paths)

    def run_(command: str, *argv: str):
        extra = ["--dir", str(tmp_path / "backups")] if command in ("backup", "restore") else []
        code = main([command, *argv, "--db", crater_db, "--create-console-tables", *extra],
                    paths=app_paths)
        out, err = capsys.readouterr()
        return code, out, err
    return run_


def backup(run, org: str, user: str) -> str:
    code, out, err = run("backup", "--org", org, "--user", user, "--json", "--force")
    assert code == 0, err
    result = json.loads(out)
    assert "1 table left out: app_settings" in result["message"]
    return result["path"]


def table_names(engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def memberships(engine) -> set[tuple[int, int]]:
    with engine.connect() as conn:
        return set(map(tuple, conn.execute(text("SELECT user_id, company_id FROM user_company"))))


@pytest.mark.parametrize("declared", ["settings", "file"])
def test_scope_lists_every_table_with_its_status_and_the_true_row_counts(
        declared, run, engine, schema, app_paths, tmp_path):
    args = ["--org", "ACME", "--json"]
    if declared == "file":  # the map handed over as a file, the mapping's keys in the settings
        write_settings(app_paths, ownership=None)
        (tmp_path / "ownership.json").write_text(json.dumps(CRATER_OWNERSHIP))
        args += ["--ownership", str(tmp_path / "ownership.json")]
    code, out, err = run("scope", *args)
    assert code == 0, err
    lines = {line["table"]: line for line in json.loads(out)["tables"]}
    assert set(lines) == table_names(engine)  # every table, and scope made none of its own
    status = {name: line["status"] for name, line in lines.items()}
    assert status == {"companies": "organizations", "users": "shared", "currencies": "shared",
                      "app_settings": "left out", **dict.fromkeys(schema.truth, "backed up")}
    assert lines["app_settings"]["how"] == CRATER_OWNERSHIP["app_settings"]["left_out"]
    assert {name: lines[name]["rows"] for name in schema.truth} == {
        name: true_count(engine, schema, ACME, name) for name in schema.truth}
    assert json.loads(out)["left_out"] == ["app_settings"]


def test_a_tenant_admins_backup_and_restore_after_a_normal_day(run, engine, schema, app_paths,
                                                               capsys):
    archive = backup(run, "ACME", "bob")
    with zipfile.ZipFile(archive) as zf:
        manifest = json.loads(zf.read(MANIFEST))
    saved = {t["name"]: t["rows"] for t in manifest["tables"]}
    assert saved == {name: true_count(engine, schema, ACME, name) for name in schema.truth}
    assert manifest["scope"]["map"]["users"]["status"] == "shared"
    assert manifest["scope"]["left_out"] == ["app_settings"]
    code = main(["verify", archive], paths=app_paths)
    out = capsys.readouterr().out
    assert code == 0
    assert "undamaged" in out and "1 table left out: app_settings." in out
    at_backup = digests(engine, schema, ACME)

    schema.normal_day(engine)  # a new customer with addresses, a new invoice with its mails
    new_hash = php_bcrypt("alice-new-pass")
    with engine.begin() as conn:  # and alice, who is in every company, changes her password
        conn.execute(text("UPDATE users SET password = :pw WHERE username = 'alice'"),
                     {"pw": new_hash})
    after_day = digests(engine, schema, ACME)
    assert after_day["mine"] != at_backup["mine"] and after_day["shared"] != at_backup["shared"]

    code, out, err = run("restore", archive, "--org", "ACME", "--user", "bob", "--yes",
                         "--json")
    assert code == 0, err
    assert "another organization" not in out
    assert "1 table left out: app_settings" in err  # the preview, before it went on
    restored = digests(engine, schema, ACME)
    assert restored["mine"] == at_backup["mine"]
    assert restored["others"] == at_backup["others"]  # Bolt's and Core's rows, memberships too
    assert restored["shared"] == after_day["shared"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT password FROM users WHERE username = 'alice'")
                            ).scalar_one() == new_hash
    assert {(1, BOLT), (1, CORE)} <= memberships(engine)


def test_restoring_a_company_gives_back_its_own_memberships_and_never_anothers(
        run, engine, schema):
    """user_company rows are their company's: a restore of Acme returns Acme's memberships
    to the backup's, and no membership of Bolt or Core is ever touched."""
    archive = backup(run, "ACME", "bob")
    before = memberships(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO user_company (id, user_id, company_id) "
                          "VALUES (50, 3, :a), (51, 2, :b)"), {"a": ACME, "b": BOLT})
    code, _, err = run("restore", archive, "--org", "ACME", "--user", "bob", "--yes")
    assert code == 0, err
    # carol's new membership of Acme is gone with Acme's state; bob's new one of Bolt stays.
    assert memberships(engine) == before | {(2, BOLT)}


def rows_of(engine, table: str, company: int) -> set[tuple]:
    with engine.connect() as conn:
        return set(map(tuple, conn.execute(text(
            f"SELECT * FROM {table} WHERE company_id = :c"), {"c": company})))


def test_a_membership_of_a_user_deleted_since_the_backup_is_left_out_and_the_rest_restored(
        run, engine, schema):
    """users is shared: a restore of Acme cannot bring back a user deleted since the backup,
    so it leaves out that user's membership, says so, and restores everything else."""
    archive = backup(run, "ACME", "bob")
    at_backup = digests(engine, schema, ACME)
    acme_members = rows_of(engine, "user_company", ACME)
    assert (7, 4, ACME) in acme_members  # dave's membership is in the backup
    with engine.begin() as conn:  # dave leaves: his roles, memberships and account go
        for table in ("assigned_roles", "user_company"):
            conn.execute(text(f"DELETE FROM {table} WHERE user_id = 4"))
        conn.execute(text("DELETE FROM users WHERE id = 4"))
    schema.normal_day(engine)  # and Acme's business goes on
    before = digests(engine, schema, ACME)
    code, out, err = run("restore", archive, "--org", "ACME", "--user", "bob", "--yes",
                         "--json")
    assert code == 0, err
    note = ("user_company: 1 row of the backup was not put back because it belongs to users "
            "row id 4, deleted since the backup (users rows are shared by every organization, "
            "and a restore of one organization never brings them back).")
    assert f"Note: {note}" in err  # the preview says so before it goes on
    result = json.loads(out)
    assert note in result["warnings"]
    preview = {t["table"]: t for t in result["preview"]}
    assert preview["user_company"]["left_out"] == 1  # and counted nowhere else:
    assert preview["user_company"]["to_insert"] == preview["user_company"]["to_delete"] == 0
    assert result["tables"]["user_company"] == len(acme_members) - 1
    restored = digests(engine, schema, ACME)
    assert rows_of(engine, "user_company", ACME) == acme_members - {(7, 4, ACME)}
    with engine.connect() as conn:  # dave is not back in any way
        for table in ("user_company", "assigned_roles"):
            assert not conn.execute(text(f"SELECT id FROM {table} WHERE user_id = 4")).all()
        assert not conn.execute(text("SELECT id FROM users WHERE id = 4")).all()
    mine = {name: d for name, d in restored["mine"].items() if name != "user_company"}
    assert mine == {name: d for name, d in at_backup["mine"].items() if name != "user_company"}
    assert restored["others"] == before["others"]
    assert restored["shared"] == before["shared"]


def ids(engine, table: str) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(text(f"SELECT id FROM {table}")).scalars())


def test_the_rows_that_depend_on_a_left_out_membership_are_left_out_with_it(run, engine,
                                                                            schema):
    """A table of the shop's own making hangs off memberships (per-member settings): when
    dave is deleted, his settings row leaves with his membership, so nothing dangles; bob's
    stays, and the Note says why."""
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE member_settings (id INTEGER PRIMARY KEY, "
                          "membership_id INTEGER NOT NULL REFERENCES user_company (id), "
                          "theme VARCHAR(20))"))
        conn.execute(text("INSERT INTO member_settings VALUES (1, 7, 'dark'), (2, 4, 'light')"))
    try:
        archive = backup(run, "ACME", "bob")
        assert rows_of(engine, "user_company", ACME) >= {(7, 4, ACME), (4, 2, ACME)}
        with engine.begin() as conn:  # dave leaves, and everything of his with him
            conn.execute(text("DELETE FROM member_settings WHERE membership_id = 7"))
            for table in ("assigned_roles", "user_company"):
                conn.execute(text(f"DELETE FROM {table} WHERE user_id = 4"))
            conn.execute(text("DELETE FROM users WHERE id = 4"))
            conn.execute(text("UPDATE member_settings SET theme = 'blue' WHERE id = 2"))
        code, out, err = run("restore", archive, "--org", "ACME", "--user", "bob", "--yes",
                             "--json")
        assert code == 0, err
        assert ("member_settings: 1 row of the backup was not put back because it belongs to "
                "user_company rows left out as well (so that nothing points at a row that is "
                "not there).") in json.loads(out)["warnings"]
        with engine.connect() as conn:
            assert conn.execute(text("SELECT id, membership_id, theme FROM member_settings")
                                ).all() == [(2, 4, "light")]  # bob's is the backup's again
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE member_settings"))


def test_a_customer_whose_shared_currency_was_deleted_stops_the_restore_unchanged(
        run, engine, schema):
    """Only a deleted user's links are left out: a customer of the backup paying in a
    currency deleted since would otherwise be left out, and the restore would then delete
    the live customer (moved to another currency) with all their invoices. Refused instead,
    naming the row, and nothing changes."""
    archive = backup(run, "ACME", "bob")
    with engine.begin() as conn:  # USD is retired: every company's customers move to EUR
        conn.execute(text("UPDATE customers SET currency_id = 1 WHERE currency_id = 2"))
        conn.execute(text("DELETE FROM currencies WHERE id = 2"))
    before = digests(engine, schema, ACME)
    code, out, err = run("restore", archive, "--org", "ACME", "--user", "bob", "--yes")
    assert code == 1 and not out
    assert ("Table customers in the backup refers to 1 currencies row that is neither in the "
            "backup nor in the database (row id 101: currency_id 2)") in err
    assert digests(engine, schema, ACME) == before


def test_a_reference_into_the_organizations_own_rows_that_is_lost_still_stops_the_restore(
        run, engine, schema, tmp_path):
    """Only rows of a shared table are excused: a backup row pointing at one of Acme's own
    rows that the backup lacks is a damaged archive, refused with nothing changed."""
    damaged = retable(backup(run, "ACME", "bob"), tmp_path / "damaged.zip", "invoices",
                      lambda rows: rows[0].update(customer_id=199))
    before = digests(engine, schema, ACME)
    code, out, err = run("restore", str(damaged), "--org", "ACME", "--user", "bob", "--yes")
    assert code == 1 and not out
    assert ("Table invoices in the backup refers to 1 customers row that is neither in the "
            "backup nor in the database (row id 101: customer_id 199)") in err
    assert digests(engine, schema, ACME) == before


@pytest.mark.parametrize(("user", "user_id", "member_since_backup"), [
    ("carol", 3, True),  # her membership of Acme and her admin role would both go
    ("dave", 4, False),  # a member in the backup already: his admin role of Acme would go
])
def test_a_restore_never_takes_away_the_restorers_own_membership_and_admin_role(
        run, engine, schema, user, user_id, member_since_backup):
    """A user made an admin of Acme after its backup: restoring it would remove their role
    assignment (and membership) and with it their own access. Refused before anything
    changes; bob, an admin of Acme in the backup too, restores it."""
    archive = backup(run, "ACME", "bob")
    with engine.begin() as conn:
        if member_since_backup:
            conn.execute(text("INSERT INTO user_company (id, user_id, company_id) "
                              "VALUES (60, :u, :a)"), {"u": user_id, "a": ACME})
        conn.execute(text("INSERT INTO assigned_roles (id, role_id, user_id) VALUES (60, 1, :u)"),
                     {"u": user_id})
    before = digests(engine, schema, ACME)
    code, out, err = run("restore", archive, "--org", "ACME", "--user", user, "--yes")
    assert code == 1 and not out
    assert ("This backup is from before you were an admin of Acme: restoring it would take "
            "away your own admin rights, so it was refused and nothing was changed; ask a super "
            "admin or another admin of Acme to restore it.") in err
    assert digests(engine, schema, ACME) == before
    code, _, err = run("restore", archive, "--org", "ACME", "--user", "bob", "--yes")
    assert code == 0, err
    with engine.connect() as conn:
        assert not conn.execute(text("SELECT id FROM assigned_roles WHERE id = 60")).all()


def test_a_user_in_several_companies_acts_only_for_those_they_administer(run, engine):
    bolt = backup(run, "BOLT", "alice")
    assert "org_BOLT_" in bolt
    assert "org_ACME_" in backup(run, "ACME", "alice")
    code, out, err = run("backup", "--org", "CORE", "--user", "alice")
    assert code == 1 and not out
    assert err.strip().endswith(
        "'alice' acts only for Acme and Bolt and cannot back up or restore Core.")
    code, _, err = run("backup", "--org", "BOLT", "--user", "bob")
    assert code == 1 and "'bob' belongs to Acme and cannot back up or restore Bolt." in err
    core = backup(run, "CORE", "carol")
    before = digests(engine, crater(), CORE)
    code, _, err = run("restore", core, "--org", "CORE", "--user", "alice", "--yes")
    assert code == 1 and "cannot back up or restore Core." in err
    assert digests(engine, crater(), CORE) == before


def test_a_super_admin_is_only_who_the_mapping_declares(run, app_paths):
    assert "org_CORE_" in backup(run, "CORE", "root")
    code, _, err = run("backup", "--org", "ACME", "--user", "dave")
    assert code == 1 and "'dave' is not an admin of any organization" in err
    write_settings(app_paths, mapping={**CRATER_MAPPING, "super_admin_role": ""})
    code, _, err = run("backup", "--org", "CORE", "--user", "root", "--force")
    assert code == 1 and "'root' is not an admin of any organization" in err


def test_the_mapping_alone_makes_users_shared_and_roles_their_scopes(run, engine, schema,
                                                                      app_paths):
    """The membership and role keys already say who owns users and roles: without a word
    about them in the map, the users' stale company_id never puts users (and their password
    hashes) in an archive, and a role is its scope's company's."""
    write_settings(app_paths, ownership={k: v for k, v in CRATER_OWNERSHIP.items()
                                         if k not in ("users", "roles")})
    code, out, err = run("scope", "--org", "ACME", "--json")
    assert code == 0, err
    lines = {line["table"]: line for line in json.loads(out)["tables"]}
    assert lines["users"]["status"] == "shared"
    assert "through user_company, the mapping's membership table" in lines["users"]["how"]
    assert lines["roles"]["how"] == "roles.scope = organization id"
    assert lines["roles"]["rows"] == true_count(engine, schema, ACME, "roles") == 1
    archive = backup(run, "CORE", "carol")  # alice's stale company_id says Core
    with zipfile.ZipFile(archive) as zf:
        manifest = json.loads(zf.read(MANIFEST))
    assert {t["name"] for t in manifest["tables"]} == set(schema.truth)


def test_a_role_of_another_company_in_the_archive_is_refused(run, engine, schema, tmp_path):
    archive = backup(run, "ACME", "bob")
    forged = retable(archive, tmp_path / "forged.zip", "roles",
                     lambda rows: rows[0].update(scope=str(BOLT)))
    before = digests(engine, schema, BOLT)
    code, _, err = run("restore", str(forged), "--org", "ACME", "--user", "bob", "--yes")
    assert code == 1
    assert "Table roles in the backup holds a row of another organization (scope '2')" in err
    assert digests(engine, schema, BOLT) == before


@pytest.mark.parametrize(("table", "forge"), [
    ("roles", lambda rows: rows.append({"id": 99, "name": "super_admin", "scope": None})),
    ("assigned_roles", lambda rows: rows.append({"id": 99, "role_id": 6, "user_id": 2})),
])
def test_an_edited_archive_never_makes_a_super_admin(run, engine, schema, tmp_path, table,
                                                      forge):
    """The super admin's role has no scope, so it is no company's: an archive of Acme that
    adds it, or assigns it to bob, is refused and bob stays an admin of Acme only."""
    forged = retable(backup(run, "ACME", "bob"), tmp_path / "forged.zip", table, forge)
    before = digests(engine, schema, ACME)
    code, _, err = run("restore", str(forged), "--org", "ACME", "--user", "bob", "--yes")
    assert code == 1 and "refused" in err
    assert digests(engine, schema, ACME) == before
    code, _, err = run("backup", "--org", "CORE", "--user", "bob")
    assert code == 1 and "'bob' belongs to Acme and cannot back up or restore Core." in err


CLASH_1010 = ("Table email_logs: the backup's row with id 1010 clashes with a row that belongs "
              "to another organization (or to none); restoring would overwrite it, so the "
              "restore was refused.")


def test_mails_a_billing_app_left_behind_come_back_with_their_invoice(run, engine, schema):
    """Issue 20, point 5: the billing app deletes Acme's invoice 101 and its payment (foreign
    keys) but leaves their mails (a polymorphic pair has none), and a reminder sent since.
    Those mails are nobody's only because their parents are gone, and the backup brings the
    parents back: the restore gives them the backup's values (or removes the reminder the
    backup lacks) instead of calling them another organization's."""
    archive = backup(run, "ACME", "bob")
    at_backup = digests(engine, schema, ACME)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO email_logs (id, mailable_type, mailable_id, subject) "
                          "VALUES (1019, 'invoice', 101, 'reminder')"))
        conn.execute(text("UPDATE email_logs SET subject = 'edited' WHERE id = 1010"))
        conn.execute(text("DELETE FROM payments WHERE id = 101"))
        conn.execute(text("DELETE FROM invoices WHERE id = 101"))
    assert ids(engine, "email_logs") >= {1010, 1012, 1019}  # left behind
    code, out, err = run("restore", archive, "--org", "ACME", "--user", "bob", "--yes",
                         "--json")
    assert code == 0, err
    result = json.loads(out)
    mails = {t["table"]: t for t in result["preview"]}["email_logs"]
    assert mails["to_update"] == 2 and mails["to_delete"] == 1  # 1010, 1012; the reminder
    assert (result["updated"], result["deleted"]) == (  # the preview said what it did
        sum(t["to_update"] for t in result["preview"]),
        sum(t["to_delete"] for t in result["preview"]))
    restored = digests(engine, schema, ACME)
    assert restored["mine"] == at_backup["mine"]  # invoice 101, its payment and mails
    assert restored["others"] == at_backup["others"]  # Bolt's and Core's untouched
    assert 1019 not in ids(engine, "email_logs")


@pytest.mark.parametrize(("how", "parent"), [
    ("another company's invoice", 201),  # Bolt's invoice 201 exists: the mail is Bolt's
    ("an invoice that is nowhere", 999),  # neither in the backup nor in the database
])
def test_a_mail_with_the_backups_key_that_is_not_acmes_still_stops_the_restore(
        run, engine, schema, how, parent):
    archive = backup(run, "ACME", "bob")
    with engine.begin() as conn:
        conn.execute(text("UPDATE email_logs SET mailable_id = :p WHERE id = 1010"),
                     {"p": parent})
    before = {c: digests(engine, schema, c) for c in (ACME, BOLT)}
    code, out, err = run("restore", archive, "--org", "ACME", "--user", "bob", "--yes")
    assert code == 1 and not out, how
    assert CLASH_1010 in err
    assert {c: digests(engine, schema, c) for c in (ACME, BOLT)} == before
