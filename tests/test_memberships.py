"""Memberships through a table and roles held elsewhere (issue 20): who may log in, for which
tenants, and that an admin of one tenant never backs up or restores another."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from sqlalchemy import create_engine, inspect

from desktop_backup.auth import LoginThrottle, authenticate, authorize
from desktop_backup.cli import main
from desktop_backup.config import Settings, load_settings, save_settings
from desktop_backup.errors import LoginRefused, SchemaError, UsageError
from desktop_backup.organizations import find_organization
from tests.membership_schema import ACME, BETA, MAPPING, PASSWORD, load_membership_schema


@pytest.fixture
def members_db(empty_db) -> str:
    load_membership_schema(empty_db)
    return empty_db


@pytest.fixture
def legacy_db(tmp_path) -> str:
    """SQLite with the users table's stale tenant column (bob's says Beta)."""
    path = tmp_path / "databases" / "legacy.sqlite"
    path.parent.mkdir(exist_ok=True)
    url = f"sqlite:///{path}"
    load_membership_schema(url, legacy_tenant_column=True)
    return url


@pytest.fixture
def throttle(tmp_path) -> LoginThrottle:
    return LoginThrottle(tmp_path / "throttle.json")


def log_in(url, name, throttle, mapping=MAPPING):
    engine = create_engine(url)
    try:
        return authenticate(engine, mapping, name, PASSWORD, throttle)
    finally:
        engine.dispose()


def org(url, key):
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return find_organization(conn, MAPPING, key)
    finally:
        engine.dispose()


def test_a_user_of_two_tenants_may_act_for_each_and_has_to_choose(members_db, throttle):
    alice = log_in(members_db, "alice", throttle)
    assert [o.code for o in alice.organizations] == ["ACME", "BETA"]
    assert alice.organization is None and not alice.is_super_admin
    assert alice.acting_for(org(members_db, "BETA")).organization.code == "BETA"


def test_an_admin_of_one_tenant_acts_for_it_only(members_db, throttle):
    bob = log_in(members_db, "bob", throttle)
    assert bob.organization.code == "ACME" and not bob.is_super_admin
    authorize(bob, org(members_db, ACME))
    with pytest.raises(LoginRefused, match="'bob' belongs to Acme Health and cannot back up "
                                           "or restore Beta Pharma."):
        authorize(bob, org(members_db, BETA))
    with pytest.raises(LoginRefused, match="cannot back up or restore Beta Pharma"):
        bob.acting_for(org(members_db, BETA))


def test_the_users_stale_tenant_column_is_ignored_when_the_mapping_says_membership(
        legacy_db, throttle):
    bob = log_in(legacy_db, "bob", throttle)
    assert [o.code for o in bob.may_act_for] == ["ACME"]
    with pytest.raises(LoginRefused, match="cannot back up or restore Beta Pharma"):
        authorize(bob, org(legacy_db, BETA))


def test_a_role_that_is_not_admin_gets_nobody_in(members_db, throttle):
    with pytest.raises(LoginRefused, match="'carol' is not an admin of any organization"):
        log_in(members_db, "carol", throttle)


def test_an_admin_role_without_a_scope_is_an_admin_of_nothing_never_a_super_admin(
        members_db, throttle):
    with pytest.raises(LoginRefused, match="'dave' is not an admin of any organization"):
        log_in(members_db, "dave", throttle)


def test_the_super_admin_is_only_who_the_mapping_declares(members_db, throttle):
    root = log_in(members_db, "root", throttle)
    assert root.is_super_admin and root.organization is None
    authorize(root, org(members_db, BETA))
    nobody = replace(MAPPING, super_admin_role="")
    with pytest.raises(LoginRefused, match="'root' is not an admin of any organization"):
        log_in(members_db, "root", throttle, nobody)


def test_a_membership_table_the_database_lacks_is_named(members_db, throttle):
    wrong = replace(MAPPING, membership_table="team_members")
    with pytest.raises(SchemaError, match="no 'team_members' table.*membership table"):
        log_in(members_db, "bob", throttle, wrong)


# --- the command line --------------------------------------------------------------------------


@pytest.fixture
def run(app_paths, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DESKTOP_BACKUP_PASSWORD", PASSWORD)
    save_settings(app_paths, Settings(mapping=MAPPING))

    def run_(*argv: str, allow: bool = True):
        flags = ["--create-console-tables"] if allow else []
        code = main([*argv, *flags, "--dir", str(tmp_path / "backups")], paths=app_paths)
        out, err = capsys.readouterr()
        return code, out, err
    return run_


def test_the_cli_backs_up_the_users_tenant_and_refuses_another(run, members_db):
    code, out, err = run("backup", "--db", members_db, "--org", "ACME", "--user", "bob",
                         "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["ok"] and result["tables"]["customers"] == 2
    code, out, err = run("backup", "--db", members_db, "--org", "BETA", "--user", "bob")
    assert code == 1 and not out
    assert err.strip().endswith(
        "'bob' belongs to Acme Health and cannot back up or restore Beta Pharma.")
    assert len(err.strip().splitlines()) == 1


def test_a_user_of_two_tenants_backs_up_either_with_org(run, members_db):
    for code_ in ("ACME", "BETA"):
        code, out, err = run("backup", "--db", members_db, "--org", code_, "--user", "alice",
                             "--json")
        assert code == 0, err
        assert f"org_{code_}_" in json.loads(out)["path"]


def test_the_cli_refuses_to_restore_another_tenant_with_its_own_backup(run, members_db):
    code, out, err = run("backup", "--db", members_db, "--org", "BETA", "--user", "alice",
                         "--json")
    assert code == 0, err
    beta_archive = json.loads(out)["path"]
    code, out, err = run("restore", beta_archive, "--db", members_db, "--org", "BETA",
                         "--user", "bob", "--yes")
    assert code == 1
    assert "'bob' belongs to Acme Health and cannot back up or restore Beta Pharma." in err


def test_console_tables_are_added_to_another_apps_database_only_when_allowed(run, members_db):
    code, out, err = run("backup", "--db", members_db, "--org", "ACME", "--user", "bob",
                         allow=False)
    assert code == 1 and not out
    assert err.strip().splitlines()[-1] == (
        "desktop-backup: This database is not the billing app's, and the console would add its "
        "own tables to it (auto_backup_logs, desktop_backup_audit, desktop_backup_encryption, "
        "desktop_backup_keys, desktop_backup_login_failures, desktop_backup_offsite, "
        "desktop_backup_recovery_sheets, desktop_backup_runs), so nothing was done; run again "
        "with --create-console-tables, or "
        'set "create_console_tables": true in the settings, to allow it.')
    assert console_tables(members_db) == set()
    code, _, err = run("backup", "--db", members_db, "--org", "ACME", "--user", "bob")
    assert code == 0, err
    assert {"auto_backup_logs", "desktop_backup_audit"} <= console_tables(members_db)
    # Allowed once is allowed: the next command needs no flag.
    code, _, err = run("backup", "--db", members_db, "--org", "ACME", "--user", "bob",
                       "--force", allow=False)
    assert code == 0, err


def test_the_setting_allows_the_console_tables_too(run, app_paths, members_db):
    save_settings(app_paths, Settings(mapping=MAPPING, create_console_tables=True))
    code, _, err = run("backup", "--db", members_db, "--org", "ACME", "--user", "bob",
                       allow=False)
    assert code == 0, err


def test_a_refused_tenant_is_told_so_before_any_table_is_made(run, members_db):
    code, _, err = run("backup", "--db", members_db, "--org", "BETA", "--user", "bob",
                       allow=False)
    assert code == 1 and "cannot back up or restore Beta Pharma." in err
    assert console_tables(members_db) == set()


def console_tables(url) -> set[str]:
    engine = create_engine(url)
    try:
        return {name for name in inspect(engine).get_table_names()
                if name == "auto_backup_logs" or name.startswith("desktop_backup_")}
    finally:
        engine.dispose()


def test_the_mapping_keeps_memberships_and_roles_in_the_settings_file(app_paths):
    save_settings(app_paths, Settings(mapping=MAPPING))
    assert load_settings(app_paths).mapping == MAPPING
    default = Settings().mapping
    assert not default.membership_table and not default.role_assignments_table
    assert not Settings().create_console_tables
    app_paths.settings_file.write_text('{"mapping": {"membership_tabel": "user_tenant"}}')
    with pytest.raises(UsageError, match="unknown keys: membership_tabel"):
        load_settings(app_paths)
