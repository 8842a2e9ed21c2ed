"""Logging in with billing passwords: who gets in, who is told why not, and the lockout."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from dataclasses import replace

import argon2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from desktop_backup.auth import (
    BAD_CREDENTIALS,
    LoginThrottle,
    Session,
    authenticate,
    authorize,
    dummy_hash_like,
    verify_password,
)
from desktop_backup.config import SchemaMapping
from desktop_backup.db import open_engine
from desktop_backup.demo import DEMO_PASSWORD
from desktop_backup.errors import LockedOut, LoginRefused, SchemaError
from desktop_backup.organizations import Organization, find_organization
from tests.auth_support import SecondsClock, cheap_passwords, php_bcrypt

MAPPING = SchemaMapping()
MINUTE = 60.0


# --- helpers -----------------------------------------------------------------------------------


def php_argon2(password: str, kind: argon2.Type) -> str:
    hasher = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=kind)
    return hasher.hash(password)


@pytest.fixture
def clock() -> SecondsClock:
    return SecondsClock()


@pytest.fixture
def throttle(tmp_path, clock) -> LoginThrottle:
    return LoginThrottle(tmp_path / "data" / "login-throttle.json", clock=clock)


@pytest.fixture
def fast_engine(sqlite_demo_db):
    """The SQLite demo database with cost-4 hashes, for tests of logic rather than bcrypt."""
    engine = open_engine(sqlite_demo_db)
    cheap_passwords(engine)
    yield engine
    engine.dispose()


def login(engine, throttle, name: str, password: str = DEMO_PASSWORD,
          mapping: SchemaMapping = MAPPING) -> Session:
    return authenticate(engine, mapping, name, password, throttle)


def refusal(engine, throttle, name: str, password: str = DEMO_PASSWORD) -> str:
    with pytest.raises(LoginRefused) as info:
        login(engine, throttle, name, password)
    return str(info.value)


# --- verify_password: what PHP's password_verify accepts -------------------------------------


def test_a_hash_from_the_php_manual_verifies():
    # The example in PHP's password_verify documentation, made by PHP itself.
    php_hash = "$2y$07$BCryptRequires22Chrcte/VlQH0piJtjXl.0t1XkA8pw9dMXTpOq"
    assert verify_password("rasmuslerdorf", php_hash)
    assert not verify_password("rasmuslerdorF", php_hash)


def test_an_argon2i_hash_written_by_php_verifies():
    php_hash = ("$argon2i$v=19$m=1024,t=2,p=2$Si9YUTV5Mk50clRPckJmNg"
                "$iiaHUvfJpx2fwVJLUDr2J0XePR31gxxIu5VHlgFMA/k")
    assert verify_password("test", php_hash)
    assert not verify_password("Test", php_hash)


@pytest.mark.parametrize("prefix", ["$2y$", "$2a$", "$2b$"])
def test_every_bcrypt_prefix_verifies(prefix):
    hashed = php_bcrypt("s3cret pass", prefix=prefix)
    assert hashed.startswith(prefix)
    assert verify_password("s3cret pass", hashed)
    assert not verify_password("s3cret pas", hashed)


@pytest.mark.parametrize("kind", [argon2.Type.I, argon2.Type.ID], ids=["argon2i", "argon2id"])
def test_argon2i_and_argon2id_verify(kind):
    hashed = php_argon2("kirana-2026", kind)
    assert verify_password("kirana-2026", hashed)
    assert not verify_password("kirana-2025", hashed)


def test_passwords_are_compared_as_utf8_bytes():
    hashed = php_bcrypt("pässwörd ₹".encode())
    assert verify_password("pässwörd ₹", hashed)
    assert not verify_password("pässwörd ₹", php_bcrypt("pässwörd ₹".encode("latin-1", "replace")))
    assert verify_password("Śrīnivās", php_argon2("Śrīnivās", argon2.Type.ID))


def test_bcrypt_only_counts_the_first_72_bytes_like_php():
    first_72 = "a" * 71 + "b"
    hashed = php_bcrypt(first_72)
    assert verify_password(first_72 + "anything after is ignored", hashed)
    assert verify_password(first_72 + "x" * 500, hashed)
    assert not verify_password("a" * 70 + "bb" + "tail", hashed)


def test_the_72_byte_limit_counts_bytes_not_characters():
    # 71 ASCII bytes then 'é' (two bytes): PHP hashes only the first byte of the 'é'.
    password = "p" * 71 + "é"
    hashed = php_bcrypt(password.encode()[:72])
    assert verify_password(password, hashed)
    assert verify_password("p" * 71 + "è", hashed)  # same first byte, 0xC3


def test_bcrypt_stops_at_a_nul_byte_like_phps_crypt():
    hashed = php_bcrypt("abc")
    assert verify_password("abc\0def", hashed)
    assert verify_password("abc\0", hashed)
    assert not verify_password("abd\0c", hashed)


def test_argon2_hashes_the_whole_password_including_nul_bytes():
    hashed = php_argon2("abc\0def", argon2.Type.ID)
    assert verify_password("abc\0def", hashed)
    assert not verify_password("abc", hashed)


def test_an_empty_password_is_just_another_password():
    assert verify_password("", php_bcrypt(""))
    assert not verify_password("", php_bcrypt("x"))


GOOD_BCRYPT = php_bcrypt("pw")


@pytest.mark.parametrize("hashed", [
    "",
    "pw",
    "$2y$",
    "$2y$04$tooshort",
    GOOD_BCRYPT + "x",  # trailing garbage: PHP compares the whole string
    GOOD_BCRYPT[:-1],
    "$2y$03$" + GOOD_BCRYPT[7:],  # cost below bcrypt's minimum
    "$2y$32$" + GOOD_BCRYPT[7:],  # above its maximum
    "$2x$04$" + GOOD_BCRYPT[7:],
    "$2y$04$" + "!" * 53,
    "$argon2id$",
    "$argon2id$v=19$m=8,t=1,p=1$not-base64$!!",
    "$argon2i$v=19$m=99999999999999,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
    php_argon2("pw", argon2.Type.D),  # PHP's password_verify does not take argon2d
    "5f4dcc3b5aa765d61d8327deb882cf99",  # a bare MD5
], ids=lambda h: repr(h[:20]))
def test_garbage_and_foreign_hashes_are_false_never_an_error(hashed):
    assert verify_password("pw", hashed) is False


def test_values_that_are_not_text_are_false():
    assert verify_password("pw", None) is False  # type: ignore[arg-type]
    assert verify_password(None, GOOD_BCRYPT) is False  # type: ignore[arg-type]


PLAIN = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
                max_size=30)


@settings(max_examples=20, deadline=None)
@given(password=PLAIN, other=PLAIN)
def test_any_password_verifies_against_its_own_hash_only(password, other):
    hashed = php_bcrypt(password)
    assert verify_password(password, hashed)
    if other != password:
        assert not verify_password(other, hashed)


@settings(max_examples=200, deadline=None)
@given(prefix=st.sampled_from(["", "$2y$", "$2y$04$", "$2a$10$", "$argon2i$", "$argon2id$v=19$"]),
       rest=st.text(max_size=80), password=st.text(max_size=20))
def test_no_hash_value_makes_verification_raise(prefix, rest, password):
    assert verify_password(password, prefix + rest) in (True, False)


def test_the_dummy_hash_costs_what_a_real_one_costs():
    assert dummy_hash_like("$2y$10$" + "a" * 53).startswith("$2y$10$")
    assert dummy_hash_like(None).startswith("$2y$12$")
    assert dummy_hash_like("garbage").startswith("$2y$12$")
    real = argon2.PasswordHasher(time_cost=3, memory_cost=64, parallelism=2).hash("x")
    dummy = dummy_hash_like(real)
    assert argon2.extract_parameters(dummy) == argon2.extract_parameters(real)
    assert not verify_password("x", dummy)


# --- who may log in, on every dialect ----------------------------------------------------------


def test_admins_owners_and_the_super_admin_get_in(demo_db, throttle):
    engine = open_engine(demo_db)
    try:
        admin = login(engine, throttle, "medp.admin")
        assert (admin.username, admin.role, admin.is_owner) == ("medp.admin", "admin", False)
        assert admin.organization.code == "MEDP" and not admin.is_super_admin
        assert admin.full_name

        owner = login(engine, throttle, "medp.owner")  # role 'manager', but owns the shop
        assert owner.is_owner and owner.role == "manager"
        assert owner.organization.name == "Medplus Pharmacy, Pune"

        by_email = login(engine, throttle, "admin@medp.example")
        assert by_email.user_id == admin.user_id

        root = login(engine, throttle, "superadmin")
        assert root.is_super_admin and root.organization is None
    finally:
        engine.dispose()


def test_everyone_else_is_told_why_not(demo_db, throttle):
    engine = open_engine(demo_db)
    try:
        assert refusal(engine, throttle, "medp.staff") == (
            "The account 'medp.staff' is a staff account; only admins and organization owners "
            "can use the backup console.")
        assert "'medp.manager' is a manager account" in refusal(engine, throttle, "medp.manager")
        with engine.begin() as conn:  # a plain 'user' role: 'a user', never 'an user'
            conn.exec_driver_sql("UPDATE users SET role = 'user' WHERE username = 'medp.staff'")
        assert "'medp.staff' is a user account;" in refusal(engine, throttle, "medp.staff")
        assert "'medp.former' has been deactivated" in refusal(engine, throttle, "medp.former")
        for suspended in ("grnl.admin", "grnl.owner"):
            assert refusal(engine, throttle, suspended).startswith(
                "Greenleaf Medicals is suspended")
        assert refusal(engine, throttle, "medp.admin", "wrong") == BAD_CREDENTIALS
        assert refusal(engine, throttle, "no.such.user") == BAD_CREDENTIALS
    finally:
        engine.dispose()


# --- the details, on SQLite --------------------------------------------------------------------


def test_login_ignores_case_and_surrounding_spaces(fast_engine, throttle):
    assert login(fast_engine, throttle, "  MEDP.Admin ").username == "medp.admin"
    assert login(fast_engine, throttle, "Admin@MEDP.example").username == "medp.admin"


def test_empty_fields_are_asked_for_not_counted(fast_engine, throttle):
    assert refusal(fast_engine, throttle, "  ") == "Enter your username or email address."
    assert refusal(fast_engine, throttle, "medp.admin", "") == "Enter your password."
    assert throttle.record_failure("medp.admin") == 4


def test_an_unknown_user_takes_as_long_as_a_wrong_password(sqlite_demo_db, throttle):
    # The demo's real cost-12 hashes: the unknown user must cost a cost-12 check too.
    engine = open_engine(sqlite_demo_db)

    def fastest(name: str) -> float:
        times = []
        for _ in range(2):
            start = time.perf_counter()
            with pytest.raises(LoginRefused, match="not correct"):
                login(engine, throttle, name, "wrong password")
            times.append(time.perf_counter() - start)
        return min(times)

    try:
        known, unknown = fastest("medp.admin"), fastest("nobody.here")
    finally:
        engine.dispose()
    assert 0.5 < unknown / known < 2, (known, unknown)


def test_roles_come_from_the_schema_mapping(fast_engine, throttle):
    mapping = replace(MAPPING, admin_roles=("admin", "super_admin", "manager"))
    assert login(fast_engine, throttle, "medp.manager", mapping=mapping).role == "manager"


def test_a_mapping_naming_a_missing_column_is_a_schema_error(fast_engine, throttle):
    mapping = replace(MAPPING, username_column="login_name")
    with pytest.raises(SchemaError, match="'login_name'"):
        login(fast_engine, throttle, "medp.admin", mapping=mapping)


def test_an_admin_without_an_organization_is_refused(fast_engine, throttle):
    with fast_engine.begin() as conn:
        conn.execute(text("UPDATE users SET organization_id = NULL WHERE username = 'city.admin'"))
    assert "does not belong to any organization" in refusal(fast_engine, throttle, "city.admin")


# --- lockout -----------------------------------------------------------------------------------


def fail(engine, throttle, name: str, times: int) -> None:
    for _ in range(times):
        assert refusal(engine, throttle, name, "wrong") == BAD_CREDENTIALS


def test_five_failures_lock_the_name_for_fifteen_minutes(fast_engine, throttle, clock):
    fail(fast_engine, throttle, "medp.admin", 5)
    with pytest.raises(LockedOut) as info:
        login(fast_engine, throttle, "medp.admin")  # the right password, still refused
    assert str(info.value) == "Too many failed attempts for 'medp.admin'; try again in 15 minutes."
    assert info.value.minutes_left == 15

    clock.advance(14 * MINUTE + 1)
    with pytest.raises(LockedOut, match="try again in 1 minute\\.$"):
        login(fast_engine, throttle, "MEDP.ADMIN")
    clock.advance(MINUTE)
    assert login(fast_engine, throttle, "medp.admin").username == "medp.admin"


def test_the_lockout_is_per_name_ignoring_case(fast_engine, throttle):
    for name in ("medp.admin", "MEDP.admin", "Medp.Admin", "medp.ADMIN", "MEDP.ADMIN"):
        fail(fast_engine, throttle, name, 1)
    with pytest.raises(LockedOut):
        login(fast_engine, throttle, "medp.admin")
    assert login(fast_engine, throttle, "medp.owner").username == "medp.owner"


def test_failures_by_email_lock_the_account_without_naming_it(fast_engine, throttle):
    fail(fast_engine, throttle, "admin@medp.example", 5)
    with pytest.raises(LockedOut, match="'admin@medp.example'"):
        login(fast_engine, throttle, "admin@medp.example")
    with pytest.raises(LockedOut):
        login(fast_engine, throttle, "medp.admin")


def test_unknown_names_are_locked_out_too(fast_engine, throttle):
    fail(fast_engine, throttle, "guess.who", 5)
    with pytest.raises(LockedOut):
        login(fast_engine, throttle, "guess.who")


def test_a_locked_name_is_refused_before_the_database_is_asked(throttle):
    for _ in range(5):
        throttle.record_failure("medp.admin")
    nowhere = create_engine("sqlite:////nonexistent-folder/billing.sqlite")
    with pytest.raises(LockedOut):
        login(nowhere, throttle, "medp.admin")


def test_a_successful_login_clears_the_count(fast_engine, throttle):
    fail(fast_engine, throttle, "medp.admin", 4)
    login(fast_engine, throttle, "medp.admin")
    fail(fast_engine, throttle, "medp.admin", 4)
    assert login(fast_engine, throttle, "medp.admin").username == "medp.admin"


def test_old_failures_are_forgotten(throttle, clock):
    for _ in range(4):
        throttle.record_failure("medp.admin")
    clock.advance(16 * MINUTE)
    assert throttle.record_failure("medp.admin") == 4
    throttle.check("medp.admin")


def test_the_lockout_survives_a_restart(tmp_path, clock):
    path = tmp_path / "login-throttle.json"
    first = LoginThrottle(path, clock=clock)
    for _ in range(5):
        first.record_failure("medp.admin")
    clock.advance(5 * MINUTE)
    again = LoginThrottle(path, clock=clock)
    with pytest.raises(LockedOut) as info:
        again.check("medp.admin")
    assert info.value.minutes_left == 10


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_the_throttle_file_is_private(throttle):
    throttle.record_failure("medp.admin")
    assert stat.S_IMODE(os.stat(throttle.path).st_mode) == 0o600
    assert [p.name for p in throttle.path.parent.iterdir()] == [throttle.path.name]


@pytest.mark.parametrize("content", [
    b"\x00\xff junk", b"", b"[]", b'{"accounts": []}', b'{"accounts": {"x": {"failures": 5}}}',
    b'{"accounts": {"x": {"failures": ["soon"]}}}', b'{"version": 1',
], ids=repr)
def test_a_damaged_throttle_file_counts_as_empty_and_is_rewritten(throttle, content):
    throttle.path.parent.mkdir(parents=True)
    throttle.path.write_bytes(content)
    throttle.check("x")
    assert json.loads(throttle.path.read_text())["accounts"] == {}
    assert throttle.record_failure("x") == 4


def test_a_clock_turned_back_does_not_lock_for_longer(throttle, clock):
    for _ in range(5):
        throttle.record_failure("medp.admin")
    clock.advance(-24 * 3600)
    assert throttle.minutes_left("medp.admin") == 15
    clock.advance(15 * MINUTE)
    throttle.check("medp.admin")


def test_an_unwritable_throttle_folder_still_counts(tmp_path, clock):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    throttle = LoginThrottle(blocker / "login-throttle.json", clock=clock)
    for _ in range(5):
        throttle.record_failure("medp.admin")
    with pytest.raises(LockedOut):
        throttle.check("medp.admin")


# --- authorize ---------------------------------------------------------------------------------


def test_each_login_may_touch_only_its_own_organization(fast_engine, throttle):
    with fast_engine.connect() as conn:
        medp = find_organization(conn, MAPPING, "MEDP")
        city = find_organization(conn, MAPPING, "CITY")
    admin = login(fast_engine, throttle, "medp.admin")
    authorize(admin, medp)
    with pytest.raises(LoginRefused) as info:
        authorize(admin, city)
    assert str(info.value) == ("'medp.admin' belongs to Medplus Pharmacy, Pune and cannot back "
                               "up or restore City Care Chemists.")
    owner = login(fast_engine, throttle, "city.owner")
    authorize(owner, city)
    with pytest.raises(LoginRefused):
        authorize(owner, medp)
    root = login(fast_engine, throttle, "superadmin")
    authorize(root, medp)
    authorize(root, city)


def test_a_session_without_an_organization_may_touch_none():
    session = Session(7, "orphan", "Orphan", "admin", False, None)
    city = Organization(2, "CITY", "City Care Chemists", "active", True, None, {})
    with pytest.raises(LoginRefused, match="belongs to no organization"):
        authorize(session, city)
