"""A restore judges what a backup says by rules the backup cannot rewrite.

Whoever can restore can also edit a backup and recompute its checksums. These archives are
such forgeries, built from real backups in each test: a user made super admin or owner, a
deactivated owner brought back, an owner's password swapped, a user moved into another
organization, a sale pointed at another organization's customer. Each is refused with one
sentence naming the user (or the row) and the column, audited, and nothing changes. The
authenticity seal tells the restorer whether a file is as the console wrote it.
"""

from __future__ import annotations

import json
import re
import secrets
import zipfile
from pathlib import Path

import bcrypt
import pytest
from sqlalchemy import text

from desktop_backup.archive import MANIFEST
from desktop_backup.authenticity import AUTHENTIC, CHANGED, FOREIGN, UNCHECKED, read_key
from desktop_backup.cli import main
from desktop_backup.demo import DEMO_PASSWORD
from desktop_backup.opening import verify_archive
from desktop_backup.restore import (
    RestoreRefused,
    apply_restore,
    check_restore,
    list_restore_points,
    preview_text,
)
from desktop_backup.work import Actor, Site
from tests import test_restore as shared
from tests.auth_support import cheap_passwords
from tests.clock import FakeClock
from tests.restore_support import (
    ADMIN,
    MAPPING,
    SUPER,
    backup,
    db_digest,
    keep_seal,
    org_of,
    rebuild,
    retable,
    run,
    scalar,
    seed_json,
    write_seed,
)

engine = shared.engine
folder = shared.folder
sqlite_url = shared.sqlite_url
sqlite_engine = shared.sqlite_engine

OWNER = Actor(2, "medp.owner", "manager", True)
CITY_ADMIN = Actor(8, "city.admin", "admin")
two_dialects = pytest.mark.parametrize("dialect", ["sqlite", "mysql"], indirect=True)


def set_user(username: str, **values):
    """A change for `retable`: the named user's row gets `values`."""
    def change(rows: list[dict]) -> None:
        row = next(r for r in rows if r["username"] == username)
        row.update(values)
    return change


def last_restore_outcome(engine) -> str:
    return scalar(engine, "SELECT outcome FROM desktop_backup_audit WHERE action = 'restore' "
                          "ORDER BY id DESC LIMIT 1")


def refused_and_unchanged(engine, folder: Path, org, archive: Path, actor: Actor,
                          match: str) -> None:
    before = db_digest(engine)
    with pytest.raises(RestoreRefused, match=match):
        apply_restore(Site(engine, MAPPING, FakeClock()), org, archive, actor, folder)
    assert db_digest(engine) == before
    assert not list_restore_points(folder, org)  # refused before the restore point
    assert last_restore_outcome(engine) == "refused"


# --- 1. no restore grants more than the restorer holds ----------------------------------------

@two_dialects
def test_a_staff_user_made_super_admin_is_refused_for_everyone(engine, folder):
    medp = org_of(engine)
    forged = retable(backup(engine, folder), folder / "forged.zip", "users",
                     set_user("medp.staff", role="super_admin"))
    for actor in (ADMIN, OWNER, SUPER):
        refused_and_unchanged(engine, folder, medp, forged, actor,
                              r"user 'medp\.staff' \(id 5\) a super admin \(role")
    assert scalar(engine, "SELECT role FROM users WHERE username = 'medp.staff'") == "staff"


@two_dialects
def test_the_same_escalation_through_the_web_apps_layout_is_refused(engine, folder):
    medp = org_of(engine)
    member, data = seed_json(backup(engine, folder, fmt="seed"))
    staff = next(u for u in data["tables"]["users"]["data"] if u["username"] == "medp.staff")
    staff["role"] = "super_admin"
    forged = write_seed(folder / "forged-web.zip", data, member)
    refused_and_unchanged(engine, folder, medp, forged, ADMIN, r"medp\.staff.*super admin")


def test_a_role_is_raised_only_as_far_as_the_restorers_own(sqlite_engine, folder):
    medp = org_of(sqlite_engine)
    archive = backup(sqlite_engine, folder)
    run(sqlite_engine, "UPDATE users SET role = 'staff' WHERE username = 'medp.manager'")
    admin_again = retable(archive, folder / "admin.zip", "users",
                          set_user("medp.manager", role="admin"))
    nobody = Actor(3, "medp.admin")  # a caller that does not say what the restorer holds
    plan = check_restore(Site(sqlite_engine, MAPPING), medp, admin_again, restorer=nobody)
    assert not plan.ok and "medp.manager" in plan.message and "role above your own" in \
        plan.message
    # An admin may make an admin: no more than they hold themselves.
    apply_restore(Site(sqlite_engine, MAPPING, FakeClock()), medp, admin_again, ADMIN, folder)
    assert scalar(sqlite_engine, "SELECT role FROM users WHERE username = 'medp.manager'") \
        == "admin"


@two_dialects
def test_only_an_owner_or_super_admin_makes_an_owner(engine, folder):
    medp = org_of(engine)
    forged = retable(backup(engine, folder), folder / "owner.zip", "users",
                     set_user("medp.staff", is_organization_owner=1))
    refused_and_unchanged(engine, folder, medp, forged, ADMIN,
                          r"medp\.staff.*owner of the organization \(is_organization_owner\)")
    apply_restore(Site(engine, MAPPING, FakeClock()), medp, forged, OWNER, folder)
    assert scalar(engine, "SELECT is_organization_owner FROM users "
                          "WHERE username = 'medp.staff'") == 1


def test_a_deactivated_owner_comes_back_only_for_an_owner_or_super_admin(sqlite_engine, folder):
    """Even a genuine backup: re-activating someone who outranks the restorer is refused."""
    medp = org_of(sqlite_engine)
    archive = backup(sqlite_engine, folder)
    run(sqlite_engine, "UPDATE users SET is_active = 0 WHERE username = 'medp.owner'")
    refused_and_unchanged(sqlite_engine, folder, medp, archive, ADMIN,
                          r"re-activate user 'medp\.owner' \(id 2\) \(is_active\)")
    apply_restore(Site(sqlite_engine, MAPPING, FakeClock()), medp, archive, SUPER, folder)
    assert scalar(sqlite_engine, "SELECT is_active FROM users WHERE username = 'medp.owner'") == 1


def own_rights_refusal(org) -> str:
    return (f"This backup is from before you were an admin of {org.name}: restoring it would "
            "take away your own admin rights, so it was refused and nothing was changed; ask a "
            f"super admin or another admin of {org.name} to restore it.")


@two_dialects
def test_a_restore_never_takes_away_the_restorers_own_admin_rights(engine, folder):
    """medp.manager became an admin after the backup, and medp.new joined as one: the backup
    holds the one's row as a manager and not the other's at all, so either restoring it
    would lose their own access. Refused before anything changes; an admin from before, and
    a super admin, restore it as always."""
    medp = org_of(engine)
    archive = backup(engine, folder)
    run(engine, "UPDATE users SET role = 'admin' WHERE username = 'medp.manager'")
    run(engine, "INSERT INTO users (organization_id, is_organization_owner, full_name, username, "
                "email, password, role, is_active) VALUES (:org, :no, 'New Admin', 'medp.new', "
                "'new@medp.example', 'x', 'admin', :yes)", org=medp.id, no=False, yes=True)
    promoted = {name: Actor(scalar(engine, f"SELECT user_id FROM users WHERE username = "
                                           f"'{name}'"), name, "admin")
                for name in ("medp.manager", "medp.new")}
    for actor in promoted.values():
        refused_and_unchanged(engine, folder, medp, archive, actor,
                              re.escape(own_rights_refusal(medp)))
    for actor in (ADMIN, SUPER):
        assert check_restore(Site(engine, MAPPING), medp, archive, restorer=actor).ok
    # A plan checked for somebody else is judged again for whoever applies it.
    plan = check_restore(Site(engine, MAPPING), medp, archive, restorer=ADMIN)
    refused_and_unchanged(engine, folder, medp, plan, promoted["medp.manager"],
                          re.escape(own_rights_refusal(medp)))


@two_dialects
def test_an_edited_backup_cannot_hand_an_admin_the_owners_login(engine, folder):
    medp = org_of(engine)
    archive = backup(engine, folder)
    known = "$2y$" + bcrypt.hashpw(b"the admin knows this", bcrypt.gensalt(4)).decode()[4:]
    forged = retable(archive, folder / "takeover.zip", "users",
                     set_user("medp.owner", password=known))
    refused_and_unchanged(engine, folder, medp, forged, ADMIN,
                          r"change the password of user 'medp\.owner'")
    # The genuine backup brings back the owner's old password: it is what the console wrote.
    old = scalar(engine, "SELECT password FROM users WHERE username = 'medp.owner'")
    run(engine, "UPDATE users SET password = :p WHERE username = 'medp.owner'", p=known)
    apply_restore(Site(engine, MAPPING, FakeClock()), medp, archive, ADMIN, folder)
    assert scalar(engine, "SELECT password FROM users WHERE username = 'medp.owner'") == old


@two_dialects
def test_a_user_cannot_be_moved_into_or_out_of_the_organization(engine, folder):
    medp, city = org_of(engine), org_of(engine, "CITY")
    archive = backup(engine, folder)
    moved_out = retable(archive, folder / "out.zip", "users",
                        set_user("medp.staff", organization_id=city.id))
    refused_and_unchanged(engine, folder, medp, moved_out, ADMIN, "another organization")

    def take_city_admin(rows: list[dict]) -> None:
        rows.append({**rows[-1], "user_id": 8, "username": "city.admin.taken",
                     "email": "taken@example.com", "role": "staff"})
    moved_in = retable(archive, folder / "in.zip", "users", take_city_admin)
    refused_and_unchanged(engine, folder, medp, moved_in, ADMIN, "another organization")
    assert scalar(engine, "SELECT organization_id FROM users WHERE user_id = 8") == city.id


# --- 2. no cross-organization links ------------------------------------------------------------

@two_dialects
def test_a_sale_pointed_at_another_organizations_customer_is_refused(engine, folder):
    city, medp = org_of(engine, "CITY"), org_of(engine)
    medp_customer = scalar(engine, "SELECT MIN(id) FROM customers WHERE organization_id = 1")
    sale = scalar(engine, "SELECT MIN(id) FROM sale_transactions WHERE organization_id = 2")

    def link(rows: list[dict]) -> None:
        next(r for r in rows if r["id"] == sale)["customer_id"] = medp_customer
    forged = retable(backup(engine, folder, "CITY"), folder / "link.zip", "sale_transactions",
                     link)
    refused_and_unchanged(
        engine, folder, city, forged, CITY_ADMIN,
        rf"Table sale_transactions, row id {sale}: customer_id {medp_customer} points at a "
        "customers row of another organization")
    # MEDP can still delete its own customer (nothing of CITY's points at it).
    run(engine, "DELETE FROM customer_ledgers WHERE customer_id = :c", c=medp_customer)
    with engine.begin() as conn:
        conn.execute(text("UPDATE sale_transactions SET customer_id = NULL WHERE customer_id "
                          "= :c AND organization_id = :o"), {"c": medp_customer, "o": medp.id})
        conn.execute(text("UPDATE sale_return_transactions SET customer_id = NULL WHERE "
                          "customer_id = :c"), {"c": medp_customer})
        conn.execute(text("DELETE FROM customers WHERE id = :c"), {"c": medp_customer})


def test_the_same_link_through_the_web_apps_layout_is_refused(sqlite_engine, folder):
    city = org_of(sqlite_engine, "CITY")
    medp_customer = scalar(sqlite_engine,
                           "SELECT MIN(id) FROM customers WHERE organization_id = 1")
    member, data = seed_json(backup(sqlite_engine, folder, "CITY", fmt="seed"))
    sale = data["tables"]["sale_transactions"]["data"][0]
    sale["customer_id"] = medp_customer
    forged = write_seed(folder / "link-web.zip", data, member)
    refused_and_unchanged(sqlite_engine, folder, city, forged, CITY_ADMIN,
                          rf"row id {sale['id']}: customer_id {medp_customer} points at a "
                          "customers row of another organization")


# --- 3. tamper evidence ------------------------------------------------------------------------

def test_verify_and_the_preview_say_whether_a_file_is_as_the_console_wrote_it(sqlite_engine,
                                                                              folder):
    medp = org_of(sqlite_engine)
    archive = backup(sqlite_engine, folder)
    with sqlite_engine.connect() as conn:
        key = read_key(conn)
    assert key is not None
    assert verify_archive(archive, key).authenticity == AUTHENTIC
    assert verify_archive(archive).authenticity == UNCHECKED
    assert verify_archive(archive, secrets.token_bytes(32)).authenticity == FOREIGN

    renamed = retable(archive, folder / "renamed.zip", "customers",
                      lambda rows: rows[0].update(name="Changed by hand"))
    assert verify_archive(renamed, key).authenticity == FOREIGN  # no seal at all
    resealed = keep_seal(archive, retable(archive, folder / "resealed.zip", "customers",
                                          lambda rows: rows[0].update(name="Changed by hand")))
    report = verify_archive(resealed, key)
    assert report.ok and report.authenticity == CHANGED
    assert "changed since this console wrote it" in report.message

    # Changed files still restore under the content rules, with the difference shown first.
    plan = check_restore(Site(sqlite_engine, MAPPING), medp, resealed, restorer=ADMIN)
    assert plan.ok and plan.authenticity == CHANGED
    assert "Origin: It has been changed since this console wrote it" in preview_text(plan, medp)
    plan = check_restore(Site(sqlite_engine, MAPPING), medp, archive, restorer=ADMIN)
    assert plan.authenticity == AUTHENTIC and plan.to_dict()["authenticity"] == AUTHENTIC


def test_the_seal_covers_the_manifest_which_lists_every_members_checksum(sqlite_engine, folder):
    archive = backup(sqlite_engine, folder)
    with sqlite_engine.connect() as conn:
        key = read_key(conn)
    with zipfile.ZipFile(archive) as zf:
        manifest = json.loads(zf.read(MANIFEST))
    manifest["created_by"]["username"] = "someone else"
    edited = keep_seal(archive, rebuild(archive, folder / "who.zip",
                                        manifest=lambda _m: manifest))
    assert verify_archive(edited, key).authenticity == CHANGED


def test_cli_verify_with_the_database_checks_the_seal(app_paths, capsys, sqlite_url,
                                                      sqlite_engine, folder):
    archive = backup(sqlite_engine, folder)
    assert main(["verify", str(archive), "--db", sqlite_url, "--json"], paths=app_paths) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["authenticity"] == AUTHENTIC
    assert "exactly as this console wrote it" in report["message"]
    assert main(["verify", str(archive)], paths=app_paths) == 0
    assert "connect to the billing database (--db)" in capsys.readouterr().out


def test_the_cli_restore_judges_by_the_logged_in_users_rights(app_paths, capsys, monkeypatch,
                                                              sqlite_url, sqlite_engine, folder):
    cheap_passwords(sqlite_engine)
    monkeypatch.setenv("DESKTOP_BACKUP_PASSWORD", DEMO_PASSWORD)
    forged = retable(backup(sqlite_engine, folder), folder / "owner.zip", "users",
                     set_user("medp.staff", is_organization_owner=1))
    before = db_digest(sqlite_engine)
    args = ["restore", str(forged), "--db", sqlite_url, "--org", "MEDP", "--dir", str(folder),
            "--yes"]
    assert main([*args, "--user", "medp.admin"], paths=app_paths) == 1
    assert "would make user 'medp.staff' (id 5) an owner" in capsys.readouterr().err
    assert db_digest(sqlite_engine) == before
    assert main([*args, "--user", "medp.owner"], paths=app_paths) == 0
    assert scalar(sqlite_engine, "SELECT is_organization_owner FROM users "
                                 "WHERE username = 'medp.staff'") == 1


def test_every_table_the_console_makes_is_its_own_never_an_organizations(sqlite_engine,
                                                                         folder):
    """The console's tables carry organization_id too: unless they are CONSOLE_TABLES, a
    backup would hold them and a restore would rewind the console's own bookkeeping."""
    from sqlalchemy import inspect

    from desktop_backup.auth import LoginThrottle, authenticate
    from desktop_backup.db import reflect
    from desktop_backup.errors import LoginRefused
    from desktop_backup.offsite_queue import ensure_offsite_table
    from desktop_backup.tenancy import CONSOLE_TABLES, discover_scope

    before = set(inspect(sqlite_engine).get_table_names())
    backup(sqlite_engine, folder)  # slots, audit, runs, the archive key
    ensure_offsite_table(sqlite_engine)
    with pytest.raises(LoginRefused):
        authenticate(sqlite_engine, MAPPING, "medp.admin", "wrong",
                     LoginThrottle(folder / "throttle.json"))
    made = set(inspect(sqlite_engine).get_table_names()) - before
    assert {"desktop_backup_keys", "desktop_backup_offsite", "desktop_backup_runs",
            "desktop_backup_login_failures"} <= made
    assert made <= CONSOLE_TABLES
    with sqlite_engine.connect() as conn:
        scope = discover_scope(reflect(conn), MAPPING)
    assert not set(scope.names()) & CONSOLE_TABLES
