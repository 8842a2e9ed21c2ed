"""Who may use the console: password checks as PHP does them, roles, and failed-login throttling.

The users live in the billing database that the Laravel app writes, so a password must be
accepted here exactly when the web app's ``password_verify`` accepts it (bcrypt ``$2y$`` and
friends, argon2i, argon2id). Only admins, super admins and owners of an active organization may
log in; everyone else is told plainly why not. Failed attempts are counted per account in the
billing database itself (the console's ``desktop_backup_login_failures`` table), so every
workstation shares the count and no local user can reset it, with a small file on this
workstation as the fallback where the database cannot be written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import bcrypt
from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

from desktop_backup.config import SchemaMapping
from desktop_backup.console_tables import may_create
from desktop_backup.db import console_metadata, create_once, friendly_error
from desktop_backup.errors import (
    DatabaseUnavailable,
    LockedOut,
    LoginRefused,
    OrganizationNotFound,
    SchemaError,
)
from desktop_backup.organizations import Organization, find_organization

log = logging.getLogger(__name__)

BAD_CREDENTIALS = "The username or password is not correct."

# PHP's crypt_blowfish: cost 04-31, then 22 salt and 31 checksum characters, 60 in all.
_BCRYPT_HASH = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
_BCRYPT_MAX_BYTES = 72
_ARGON2_PREFIXES = ("$argon2i$", "$argon2id$")
# Laravel 11's default bcrypt cost; used for the dummy check when no user hash is known.
_DEFAULT_BCRYPT_COST = 12


# --- password_verify ---------------------------------------------------------------------------


def verify_password(plain: str, hashed: str) -> bool:
    """True exactly when PHP's ``password_verify($plain, $hashed)`` is true.

    Handles bcrypt (``$2y$``, ``$2a$``, ``$2b$``), argon2i and argon2id. Anything else, or a
    damaged hash, is False: a bad row in the users table must never crash the login.
    """
    if not isinstance(plain, str) or not isinstance(hashed, str):
        return False
    secret = plain.encode("utf-8", "surrogatepass")
    if hashed.startswith("$2"):
        return _verify_bcrypt(secret, hashed)
    if hashed.startswith(_ARGON2_PREFIXES):
        return _verify_argon2(secret, hashed)
    return False


def _php_bcrypt_key(secret: bytes) -> bytes:
    """The bytes PHP's crypt() really hashes: a C string (up to a NUL), at most 72 bytes."""
    return secret.split(b"\0", 1)[0][:_BCRYPT_MAX_BYTES]


def _verify_bcrypt(secret: bytes, hashed: str) -> bool:
    if not _BCRYPT_HASH.fullmatch(hashed):
        return False
    # $2y$ (PHP) and $2a$ are byte-identical to $2b$ for keys of at most 72 bytes.
    normalized = ("$2b$" + hashed[4:]).encode("ascii")
    try:
        return bcrypt.checkpw(_php_bcrypt_key(secret), normalized)
    except ValueError:
        return False


def _verify_argon2(secret: bytes, hashed: str) -> bool:
    # Unlike bcrypt, PHP's argon2 hashes the whole password, NUL bytes and all.
    if not hashed.isascii():
        return False
    try:
        return PasswordHasher().verify(hashed, secret)
    except (VerificationError, InvalidHashError, ValueError):
        return False


def dummy_hash_like(sample: str | None) -> str:
    """A hash that costs as much to check as `sample`, matching no password anyone types.

    Checking it when the user is unknown makes "no such user" take as long as "wrong
    password", so the login's timing does not tell which usernames exist.
    """
    if sample and _BCRYPT_HASH.fullmatch(sample):
        return _dummy_bcrypt(int(sample[4:6]))
    if sample and sample.startswith(_ARGON2_PREFIXES):
        try:
            params = extract_parameters(sample)
        except (InvalidHashError, ValueError):
            return _dummy_bcrypt(_DEFAULT_BCRYPT_COST)
        return _dummy_argon2(params.type.name, params.time_cost, params.memory_cost,
                             params.parallelism, params.hash_len, params.salt_len)
    return _dummy_bcrypt(_DEFAULT_BCRYPT_COST)


def _dummy_bcrypt(cost: int) -> str:
    # A well-formed hash is all bcrypt needs to do the full work; it need not hash anything.
    return f"$2y${cost:02d}$" + "." * 53


@lru_cache(maxsize=8)
def _dummy_argon2(kind: str, time_cost: int, memory_cost: int, parallelism: int,
                  hash_len: int, salt_len: int) -> str:
    from argon2 import Type

    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost,
                            parallelism=parallelism, hash_len=hash_len, salt_len=salt_len,
                            type=Type[kind])
    return hasher.hash(secrets.token_hex(16))


# --- throttling --------------------------------------------------------------------------------


@dataclass
class _Attempts:
    """Failed logins of one username: when they happened, and any lockout's end."""

    failures: list[float] = field(default_factory=list)
    locked_until: float | None = None


class LoginThrottle:
    """Locks a username out after repeated failed logins, on this workstation, across restarts.

    State lives in a small JSON file (re-read on every call, so the window and the command
    line share it). A damaged file is treated as empty and rewritten: a lost counter is a
    smaller harm than a console nobody can log into. The clock is injected for tests.
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.time,
                 max_failures: int = 5, lockout_seconds: float = 15 * 60) -> None:
        self.path = Path(path)
        self.clock = clock
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds
        self._memory: dict[str, _Attempts] | None = None  # used when the file cannot be written

    def shared(self, engine: Engine) -> LoginThrottle:
        """This throttle with its count kept in `engine`'s billing database (see
        SharedLoginThrottle); this file stays the fallback."""
        return SharedLoginThrottle(engine, self)

    def minutes_left(self, username: str) -> int:
        """Whole minutes (rounded up) until `username` may try again; 0 when not locked."""
        now = self.clock()
        entry = self._load().get(_key(username))
        if entry is None or entry.locked_until is None or entry.locked_until <= now:
            return 0
        remaining = min(entry.locked_until - now, self.lockout_seconds)
        return max(1, math.ceil(remaining / 60))

    def check(self, username: str, shown_as: str | None = None) -> None:
        """Raise LockedOut while `username` is locked; called before any password check.

        `shown_as` is the name the person typed (an email, say), so the message never
        reveals the username behind it.
        """
        minutes = self.minutes_left(username)
        if minutes:
            unit = "minute" if minutes == 1 else "minutes"
            raise LockedOut(
                f"Too many failed attempts for '{(shown_as or username).strip()}'; "
                f"try again in {minutes} {unit}.",
                minutes,
            )

    def record_failure(self, username: str) -> int:
        """Count one failed login; returns how many attempts are left before the lockout."""
        now = self.clock()
        state = self._load()
        entry = state.setdefault(_key(username), _Attempts())
        entry.failures = [t for t in entry.failures if now - self.lockout_seconds < t <= now]
        entry.failures.append(now)
        left = max(0, self.max_failures - len(entry.failures))
        if not left:
            entry.failures, entry.locked_until = [], now + self.lockout_seconds
        self._save(state)
        return left

    def clear(self, username: str) -> None:
        """Forget `username`'s failures: it has just logged in."""
        state = self._load()
        if state.pop(_key(username), None) is not None:
            self._save(state)

    def _load(self) -> dict[str, _Attempts]:
        if self._memory is not None:
            return self._memory
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            log.warning("Cannot read the login throttle file %s (%s); starting afresh.",
                        self.path, exc)
            return {}
        try:
            state = _parse_state(json.loads(raw))
        except (ValueError, TypeError, AttributeError, KeyError):
            log.warning("The login throttle file %s is damaged; starting afresh.", self.path)
            self._save({})
            return {}
        if self._heal_clock(state):
            self._save(state)
        return state

    def _heal_clock(self, state: dict[str, _Attempts]) -> bool:
        """Cap lockouts that end more than one lockout from now: the clock was turned back.

        Returns whether anything changed, so the capped end is saved and does not move on.
        """
        latest = self.clock() + self.lockout_seconds
        healed = False
        for entry in state.values():
            if entry.locked_until is not None and not entry.locked_until <= latest:
                entry.locked_until, healed = latest, True
        return healed

    def _save(self, state: dict[str, _Attempts]) -> None:
        state = self._pruned(state)
        try:
            _write_private_json(self.path, _dump_state(state))
            self._memory = None
        except OSError as exc:
            log.warning("Cannot write the login throttle file %s (%s); counting in memory.",
                        self.path, exc)
            self._memory = state

    def _pruned(self, state: dict[str, _Attempts]) -> dict[str, _Attempts]:
        """Only entries that still matter, so the file stays small."""
        now = self.clock()
        return {
            name: entry for name, entry in state.items()
            if (entry.locked_until is not None and entry.locked_until > now)
            or any(t > now - self.lockout_seconds for t in entry.failures)
        }


def _key(username: str) -> str:
    """The name exactly as the account has it (or as typed, for a name that matches no
    account). Not case-folded: on SQLite and PostgreSQL 'MEDP.ADMIN' may be another account,
    or none, and guesses at it must not lock 'medp.admin' out. A spelling that reaches an
    account is counted under the account's own username (see _authenticate)."""
    return username.strip()


FAILURES_TABLE = "desktop_backup_login_failures"


def _failures_table(md: MetaData) -> Table:
    """One row per failed login; a row whose ``locked_until`` is set is where a lockout began.

    Accounts are stored as the SHA-256 of the exact name: comparisons stay exact on MySQL's
    case-insensitive collations, and the table names nobody. Times are milliseconds since the
    epoch (integers: MySQL's FLOAT would round them by minutes)."""
    return Table(FAILURES_TABLE, md,
                 Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                        autoincrement=True),
                 Column("account", String(64), nullable=False, index=True),
                 Column("failed_at", BigInteger, nullable=False),
                 Column("locked_until", BigInteger, nullable=True))


class SharedLoginThrottle(LoginThrottle):
    """The throttle kept in the billing database, so every workstation counts together and a
    new DESKTOP_BACKUP_HOME or a damaged local file resets nothing.

    Where the database cannot be written (a read-only login, a read-only file) failures go to
    the local file instead; a lockout in either place holds.
    """

    def __init__(self, engine: Engine, local: LoginThrottle) -> None:
        super().__init__(local.path, local.clock, local.max_failures, local.lockout_seconds)
        self.engine = engine
        self.local = local
        self._table: Table | None = None
        self._usable = True

    def shared(self, engine: Engine) -> LoginThrottle:
        return self if engine is self.engine else self.local.shared(engine)

    def minutes_left(self, username: str) -> int:
        local = self.local.minutes_left(username)
        if local:
            return local  # refused without asking the database
        until = self._in_database(lambda conn, table: conn.execute(
            select(func.max(table.c.locked_until)).where(
                table.c.account == _account(username),
                table.c.locked_until > self._now_ms())).scalar())
        if until is None:
            return 0
        remaining = min(until - self._now_ms(), self.lockout_seconds * 1000) / 1000
        return max(1, math.ceil(remaining / 60))

    def record_failure(self, username: str) -> int:
        left = self._in_database(lambda conn, table: self._record(conn, table, username))
        return self.local.record_failure(username) if left is None else left

    def clear(self, username: str) -> None:
        self.local.clear(username)
        self._in_database(lambda conn, table: conn.execute(
            delete(table).where(table.c.account == _account(username))))

    def _record(self, conn: Connection, table: Table, username: str) -> int:
        now, window = self._now_ms(), int(self.lockout_seconds * 1000)
        account = _account(username)
        conn.execute(delete(table).where(table.c.failed_at < now - 2 * window, or_(
            table.c.locked_until.is_(None), table.c.locked_until < now)))
        new = conn.execute(insert(table).values(account=account, failed_at=now))
        last_lock = conn.execute(select(func.max(table.c.failed_at)).where(
            table.c.account == account, table.c.locked_until.is_not(None))).scalar()
        since = max(now - window, -1 if last_lock is None else last_lock)
        count = conn.execute(select(func.count()).select_from(table).where(
            table.c.account == account, table.c.locked_until.is_(None),
            table.c.failed_at > since, table.c.failed_at <= now)).scalar_one()
        left = max(0, self.max_failures - count)
        if not left:
            conn.execute(update(table).where(table.c.id == new.inserted_primary_key[0])
                         .values(locked_until=now + window))
        return left

    def _in_database(self, work: Callable[[Connection, Table], object]):
        """`work` in one transaction; None when the database cannot keep the count."""
        try:
            if self._table is None and self._usable and not may_create(self.engine):
                # Not the billing app's database, and nobody allowed the console's tables in
                # it yet: count on this workstation, as where the database is read-only.
                self._usable = False
            if self._table is None and self._usable:
                table = _failures_table(console_metadata(self.engine))
                create_once(self.engine, table)
                self._table = table
            if self._table is None:
                return None
            with self.engine.begin() as conn:
                return work(conn, self._table)
        except (SQLAlchemyError, DatabaseUnavailable) as exc:
            if self._usable:
                log.warning("The billing database cannot keep the login throttle (%s); "
                            "counting in %s instead.", exc.__class__.__name__, self.path)
            self._usable = False
            return None

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)


def _account(username: str) -> str:
    return hashlib.sha256(_key(username).encode("utf-8", "surrogatepass")).hexdigest()


def _parse_state(data: object) -> dict[str, _Attempts]:
    if not isinstance(data, dict) or not isinstance(data["accounts"], dict):
        raise TypeError("not a throttle file")
    state = {}
    for name, entry in data["accounts"].items():
        locked = entry.get("locked_until")
        state[str(name)] = _Attempts(
            failures=[float(t) for t in entry.get("failures", [])],
            locked_until=None if locked is None else float(locked),
        )
    return state


def _dump_state(state: dict[str, _Attempts]) -> dict:
    return {"version": 1, "accounts": {
        name: {"failures": entry.failures, "locked_until": entry.locked_until}
        for name, entry in state.items()
    }}


def _write_private_json(path: Path, data: dict) -> None:
    """Write atomically (temp file, then rename) and readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- sessions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """Who is logged in, the organizations they may act for, and the one they act for now
    (None for a super admin, and for a user of several organizations who has not chosen)."""

    user_id: int
    username: str
    full_name: str
    role: str
    is_owner: bool
    organization: Organization | None
    super_admin_role: str = field(default=SchemaMapping.super_admin_role, repr=False)
    # Every organization this user administers (the login's choice); empty: `organization`.
    organizations: tuple[Organization, ...] = ()
    # Set by the login from what the mapping declares; None: the role says (users.role).
    super_admin: bool | None = field(default=None, repr=False)

    @property
    def is_super_admin(self) -> bool:
        """Super admins manage every organization and get no automatic backup."""
        if self.super_admin is not None:
            return self.super_admin
        return self.role == self.super_admin_role

    @property
    def may_act_for(self) -> tuple[Organization, ...]:
        """The organizations this user administers. A super admin may act for every one;
        authorize says so without this list."""
        if self.organizations:
            return self.organizations
        return (self.organization,) if self.organization is not None else ()

    def acting_for(self, org: Organization) -> Session:
        """This session acting for `org`, once authorize allows it (the login's choice)."""
        authorize(self, org)
        return replace(self, organization=org)


def authenticate(engine: Engine, mapping: SchemaMapping, username_or_email: str,
                 password: str, throttle: LoginThrottle) -> Session:
    """Log a billing user in, or raise LoginRefused with a sentence that says why not.

    A name locked out in the local file is refused before the database is touched; the count
    the workstations share in the database is checked next. An unknown user and a wrong
    password get the same message and cost the same time, so neither reveals which names
    exist. Database trouble is raised as DatabaseUnavailable, a missing users table as
    SchemaError.
    """
    login = (username_or_email or "").strip()
    if not login:
        raise LoginRefused("Enter your username or email address.")
    if not password:
        raise LoginRefused("Enter your password.")
    throttle = throttle.shared(engine)
    throttle.check(login)
    try:
        with engine.connect() as conn:
            return _authenticate(conn, mapping, login, password, throttle)
    except SQLAlchemyError as exc:
        raise friendly_error(exc, engine.url) from exc


def _authenticate(conn: Connection, mapping: SchemaMapping, login: str, password: str,
                  throttle: LoginThrottle) -> Session:
    table = users_table(conn, mapping)
    row = _find_user(conn, table, mapping, login)
    if row is None:
        verify_password(password, dummy_hash_like(_sample_hash(conn, table, mapping)))
        throttle.record_failure(login)
        raise LoginRefused(BAD_CREDENTIALS)
    username = str(row[mapping.username_column])
    # The same account may have been tried under its email: one counter per account.
    throttle.check(username, shown_as=login)
    if not verify_password(password, _as_text(row[mapping.password_column])):
        throttle.record_failure(username)
        raise LoginRefused(BAD_CREDENTIALS)
    session = _admit(conn, mapping, row)
    throttle.clear(login)
    throttle.clear(username)
    return session


def users_table(conn: Connection, mapping: SchemaMapping) -> Table:
    """The reflected users table, or a SchemaError saying what the mapping gets wrong."""
    name = mapping.users_table
    try:
        table = Table(name, MetaData(), autoload_with=conn)
    except NoSuchTableError:
        raise SchemaError(
            f"This database has no '{name}' table, so nobody can log in; check that it is "
            "the billing database, or fix the users table in the schema mapping."
        ) from None
    required = (mapping.user_id_column, mapping.username_column, mapping.password_column)
    if not mapping.role_assignments_table:  # roles held elsewhere need no users.role
        required += (mapping.role_column,)
    missing = [column for column in required if column not in table.c]
    if missing:
        raise SchemaError(
            f"The '{name}' table has no {', '.join(repr(c) for c in missing)} column; "
            "fix the users table's columns in the schema mapping."
        )
    return table


def _find_user(conn: Connection, table: Table, mapping: SchemaMapping,
               login: str) -> Mapping | None:
    """The user whose username or email is `login`, ignoring case as MySQL does.

    An exact match wins; a case-insensitive one is used only when it is unambiguous, so
    PostgreSQL and SQLite accept 'Medp.Admin' just as the web app on MariaDB does.
    """
    lowered = login.lower()
    columns = [table.c[mapping.username_column]]
    if mapping.email_column in table.c:
        columns.append(table.c[mapping.email_column])
    condition = or_(*(func.lower(column) == lowered for column in columns))
    rows = conn.execute(select(table).where(condition).limit(10)).mappings().all()

    def rank(row: Mapping) -> int:
        values = [_as_text(row[column.name]) for column in columns]
        return 0 if login in values else 1

    ranked = sorted(rows, key=rank)
    if not ranked or (len(ranked) > 1 and rank(ranked[0]) == rank(ranked[1])):
        return None
    return ranked[0]


def _sample_hash(conn: Connection, table: Table, mapping: SchemaMapping) -> str | None:
    """The newest user's hash: its algorithm and cost are what a real check would cost."""
    password = table.c[mapping.password_column]
    newest = table.c[mapping.user_id_column].desc()
    value = conn.execute(select(password).where(password.is_not(None)).order_by(newest)
                         .limit(1)).scalar()
    return _as_text(value) if value is not None else None


def _admit(conn: Connection, mapping: SchemaMapping, row: Mapping) -> Session:
    """The session for a user whose password is right, or LoginRefused saying why not.

    Who is an admin of which organization comes from the mapping: users.role and the user's
    tenant column (the billing database), or a membership table and role tables. A super
    admin is only who the mapping declares one; nothing else makes a user one.
    """
    username = str(row[mapping.username_column])
    if not _php_truthy(row.get(mapping.active_column, True)):
        raise LoginRefused(
            f"The account '{username}' has been deactivated; "
            "only active accounts can use the backup console."
        )
    rights = _rights(conn, mapping, row)
    if not rights.is_super and not rights.is_admin:
        raise LoginRefused(
            f"The account '{username}' is {rights.refusal}; "
            "only admins and organization owners can use the backup console."
        )
    if rights.is_super:
        # As before: a super admin's own organization is shown when it is usable, not required.
        own = _optional_organization(conn, mapping, rights.admin_of, username)
        organizations = (own,) if own is not None else ()
    else:
        organizations = _organizations_of(conn, mapping, rights.admin_of, username)
    return Session(
        user_id=int(row[mapping.user_id_column]),
        username=username,
        full_name=_as_text(row.get(mapping.full_name_column)).strip() or username,
        role=rights.role,
        is_owner=rights.is_owner,
        organization=organizations[0] if len(organizations) == 1 else None,
        super_admin_role=mapping.super_admin_role,
        organizations=organizations,
        super_admin=rights.is_super,
    )


@dataclass(frozen=True)
class _Rights:
    """What the mapping says a user may do, before the organizations are looked up."""

    role: str  # as the audit and the window name it
    is_owner: bool
    is_super: bool
    is_admin: bool  # of some organization, which may still be missing or closed
    admin_of: tuple[object, ...]  # tenant ids (as stored) this user administers
    refusal: str  # "an accountant account": what the user is, for a refusal


def _rights(conn: Connection, mapping: SchemaMapping, row: Mapping) -> _Rights:
    user_id = row[mapping.user_id_column]
    tenants = _memberships(conn, mapping, row)
    if mapping.role_assignments_table:
        held = _held_roles(conn, mapping, user_id)
        is_super = bool(mapping.super_admin_role) and any(
            name == mapping.super_admin_role and scope is None for name, scope in held)
        admin_scopes = {_as_text(scope) for name, scope in held
                        if name in mapping.admin_roles and scope is not None}
        # An admin role scoped to a tenant the user is not a member of gives nothing.
        admin_of = tuple(t for t in tenants if _as_text(t) in admin_scopes)
        role = mapping.super_admin_role if is_super else ("admin" if admin_scopes else "")
        refusal = "not an admin of any organization" if held else _role_phrase("")
        return _Rights(role, False, is_super, bool(admin_scopes), admin_of, refusal)
    role = _as_text(row[mapping.role_column]).strip()
    is_owner = _php_truthy(row.get(mapping.owner_column, False))
    is_super = role == mapping.super_admin_role
    is_admin = role in mapping.admin_roles or is_owner
    return _Rights(role, is_owner, is_super, is_admin, tenants if is_admin or is_super else (),
                   _role_phrase(role))


def _memberships(conn: Connection, mapping: SchemaMapping, row: Mapping) -> tuple[object, ...]:
    """The tenant ids the user belongs to: the membership table's rows when the mapping
    names one (a tenant column in the users table is then ignored), else users.<tenant>."""
    if not mapping.membership_table:
        org_id = row.get(mapping.tenant_column)
        return () if org_id is None else (org_id,)
    table = _mapped_table(conn, mapping.membership_table, "membership",
                          (mapping.membership_user_column, mapping.membership_tenant_column))
    tenant = table.c[mapping.membership_tenant_column]
    found = conn.execute(select(tenant).distinct().where(
        table.c[mapping.membership_user_column] == row[mapping.user_id_column],
        tenant.is_not(None)).order_by(tenant)).scalars().all()
    return tuple(found)


def _held_roles(conn: Connection, mapping: SchemaMapping,
                user_id: object) -> list[tuple[str, object]]:
    """(role name, scope) of every role the user holds; scope None for an unscoped role."""
    assigned = _mapped_table(conn, mapping.role_assignments_table, "role assignments",
                             (mapping.role_assignment_user_column,
                              mapping.role_assignment_role_column))
    roles = _mapped_table(conn, mapping.roles_table, "roles",
                          (mapping.role_id_column, mapping.role_name_column,
                           mapping.role_scope_column))
    query = (select(roles.c[mapping.role_name_column], roles.c[mapping.role_scope_column])
             .join(assigned, assigned.c[mapping.role_assignment_role_column]
                   == roles.c[mapping.role_id_column])
             .where(assigned.c[mapping.role_assignment_user_column] == user_id))
    return [(_as_text(name).strip(), scope) for name, scope in conn.execute(query)]


def _mapped_table(conn: Connection, name: str, what: str, columns: tuple[str, ...]) -> Table:
    """A table the schema mapping names, or a SchemaError saying what to fix."""
    try:
        table = Table(name, MetaData(), autoload_with=conn)
    except NoSuchTableError:
        raise SchemaError(
            f"This database has no '{name}' table, which the schema mapping names as its "
            f"{what} table; fix the mapping, or point the console at the right database."
        ) from None
    missing = [column for column in columns if column not in table.c]
    if missing:
        raise SchemaError(
            f"The '{name}' table has no {', '.join(repr(c) for c in missing)} column; "
            f"fix the {what} table's columns in the schema mapping."
        )
    return table


def _organizations_of(conn: Connection, mapping: SchemaMapping, tenant_ids: tuple[object, ...],
                      username: str) -> tuple[Organization, ...]:
    """The active organizations among `tenant_ids`; when none is, the first one's reason."""
    found: list[Organization] = []
    first_refusal: LoginRefused | None = None
    for tenant_id in tenant_ids:
        try:
            found.append(_organization_of(conn, mapping, tenant_id, username))
        except LoginRefused as exc:
            first_refusal = first_refusal or exc
    if not found:
        raise first_refusal or LoginRefused(
            f"The account '{username}' does not belong to any organization, "
            "so there is nothing it may back up.")
    return tuple(found)


def _optional_organization(conn: Connection, mapping: SchemaMapping,
                           tenant_ids: tuple[object, ...], username: str) -> Organization | None:
    try:
        return _organizations_of(conn, mapping, tenant_ids, username)[0]
    except LoginRefused:
        return None


def _organization_of(conn: Connection, mapping: SchemaMapping, org_id: object,
                     username: str) -> Organization:
    """The user's organization `org_id`: it must exist and be active."""
    try:
        organization = find_organization(conn, mapping, org_id)
        if str(organization.id) != _as_text(org_id).strip():
            raise OrganizationNotFound("found by its code, not its id")  # never another's
    except OrganizationNotFound:
        raise LoginRefused(
            f"The account '{username}' belongs to an organization that no longer exists."
        ) from None
    status = organization.status.strip().lower()
    if status != "active":
        raise LoginRefused(
            f"{organization.name} is {status or 'not active'}, so its accounts cannot use "
            "the backup console; ask support to re-activate the organization."
        )
    return organization


def authorize(session: Session, org: Organization) -> None:
    """Refuse unless `session` may back up or restore `org`: its own, or any for a super admin.

    The command line takes the organization as an argument, so this is where one shop is
    kept from touching another's data.
    """
    if session.is_super_admin:
        return
    own = session.may_act_for
    if any(mine.id == org.id for mine in own):
        return
    where = (f"belongs to {own[0].name}" if len(own) == 1
             else f"acts only for {_names(own)}" if own else "belongs to no organization")
    raise LoginRefused(f"'{session.username}' {where} and cannot back up or restore {org.name}.")


def _names(organizations: tuple[Organization, ...]) -> str:
    names = [org.name for org in organizations]
    return ", ".join(names[:-1]) + " and " + names[-1]


def _role_phrase(role: str) -> str:
    if not role:
        return "an account without a role"
    words = role.replace("_", " ")
    return f"{_article(words)} {words} account"


def _article(word: str) -> str:
    """'a' or 'an' as it is spoken: an admin, an owner, but a user (a 'you' sound)."""
    lower = word.lower()
    vowel_sound = lower[:1] in ("a", "e", "i", "o") or (
        lower[:1] == "u" and not lower.startswith(("us", "uni", "uti")))
    return "an" if vowel_sound else "a"


def _php_truthy(value: object) -> bool:
    """Truthiness as the PHP app sees a column: NULL, 0, '' and '0' are false."""
    if isinstance(value, str):
        return value not in ("", "0")
    return bool(value)


def _as_text(value: object) -> str:
    """A column value as text; some MySQL collations hand back bytes."""
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return str(value)
