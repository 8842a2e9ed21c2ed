"""Which database and who: connect, log in, and the organizations a login may act for."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from sqlalchemy import inspect
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import SQLAlchemyError

from desktop_backup import wording
from desktop_backup.auth import LoginThrottle, Session, authenticate, authorize
from desktop_backup.authenticity import check_console_schema_serves
from desktop_backup.config import AppPaths, SchemaMapping, Settings
from desktop_backup.console_tables import missing_console_tables
from desktop_backup.console_tables import refusal as console_tables_refusal
from desktop_backup.db import console_schema as console_schema_of
from desktop_backup.db import describe, friendly_error, open_engine, parse_url
from desktop_backup.errors import (
    DatabaseAuthRefused,
    DesktopBackupError,
    LockedOut,
    LoginRefused,
    UsageError,
)
from desktop_backup.history import ensure_tables
from desktop_backup.organizations import Organization, find_organization, list_organizations
from desktop_backup.profiles import Target, resolve_connection
from desktop_backup.work import Site

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class LoginResult:
    """An open engine and who logged in with it; the window owns the engine from now on."""

    engine: Engine
    session: Session
    profile: str | None = None  # the connection profile used, None for a --db address
    # The console's tables this database would get, when it is not the billing app's and
    # nobody has allowed them yet: the window asks before going on (console_tables.py).
    console_tables_missing: tuple[str, ...] = ()


class DatabasePasswordNeeded(DesktopBackupError):
    """A server connection whose password is neither saved nor typed: the server refused
    to let the console in without one."""

    def __init__(self, profile: str | None, refusal: DatabaseAuthRefused) -> None:
        name = f"'{profile}'" if profile else "this database"
        super().__init__(f"The database password for {name} is not saved on this computer; "
                         "type it in the Database password box.")
        self.profile = profile  # None for a --db address
        self.refusal = refusal  # the server's own sentence (the command line shows it)


def login(paths: AppPaths, settings: Settings, db_url: str | None, profile: str | None,
          typed_db_password: str | None, username: str, password: str,
          throttle: LoginThrottle) -> LoginResult:
    """The login's whole check, for the window and the command line alike: which database,
    its password (typed, else saved, else none), then the billing login.

    Runs on a worker thread because each step may wait: the keyring, the network, bcrypt.
    """
    target = resolve_connection(paths, settings, db_url, profile)
    result = _asking_password(target, typed_db_password, lambda db_password: connect_and_login(
        target.url, db_password, settings.mapping, username, password, throttle,
        console_schema=settings.console_schema))
    return replace(result, profile=target.profile)


def open_database(paths: AppPaths, settings: Settings, db_url: str | None,
                  profile: str | None, typed_db_password: str | None) -> Engine:
    """The billing database an address or profile names, opened as login() opens it, for
    the commands that log nobody in (`list`, `verify`); the caller disposes of it."""
    target = resolve_connection(paths, settings, db_url, profile)
    return _asking_password(target, typed_db_password,
                            lambda db_password: open_engine(
                                target.url, db_password, console_schema=settings.console_schema))


def _asking_password(target: Target, typed: str | None, connect: Callable[[str | None], T]
                     ) -> T:
    db_password = typed or target.password
    try:
        return connect(db_password)
    except DatabaseAuthRefused as exc:
        if db_password is not None:
            raise
        # Servers with trust or socket authentication need no password; this one does.
        raise DatabasePasswordNeeded(target.profile, exc) from exc


def connect_and_login(url: str, db_password: str | None, mapping: SchemaMapping,
                      username: str, password: str, throttle: LoginThrottle, *,
                      console_schema: str = "") -> LoginResult:
    """Open the billing database and check the billing login, or raise a sentence why not.
    `console_schema`: where the console keeps its own tables ("" beside the billing's)."""
    login = (username or "").strip()
    # The same sentences authenticate() gives, before any connection is opened.
    if not login:
        raise LoginRefused("Enter your username or email address.")
    if not password:
        raise LoginRefused("Enter your password.")
    throttle.check(login)
    engine = open_engine(url, db_password, console_schema=console_schema)
    try:
        session = authenticate(engine, mapping, login, password, throttle)
    except LoginRefused as exc:
        # For support: who was refused and why, never the password typed.
        log.warning("Login refused for %r on this workstation: %s", login, exc)
        try:
            if not isinstance(exc, LockedOut):
                # The attempt that used up the last try says so at once (the count is kept
                # in the billing database, so ask it there).
                throttle.shared(engine).check(login)
        finally:
            engine.dispose()
        raise
    try:
        missing = tuple(missing_console_tables(engine))
    except BaseException:
        engine.dispose()
        raise
    return LoginResult(engine, session, console_tables_missing=missing)


SERVER_KINDS = {"mysql": ("MySQL or MariaDB server", 3306),
                "postgresql": ("PostgreSQL server", 5432)}


def build_url(kind: str, *, path: str = "", host: str = "", port: int | None = None,
              database: str = "", user: str = "") -> str:
    """The profile's address from the connection form's fields, never with the password."""
    if kind == "sqlite":
        if not path.strip():
            raise UsageError("Choose the billing database file.")
        return f"sqlite:///{Path(path.strip()).expanduser().resolve()}"
    if kind not in SERVER_KINDS:
        raise UsageError(f"Unknown kind of database '{kind}'.")
    missing = [label for label, value in (("the server's address", host),
                                          ("the database name", database),
                                          ("the database user", user)) if not value.strip()]
    if missing:
        raise UsageError("Fill in " + wording.join_words(missing) + ".")
    return URL.create(kind, username=user.strip(), host=host.strip(), port=port or None,
                      database=database.strip()).render_as_string(hide_password=False)


def test_connection(url: str, password: str | None, mapping: SchemaMapping) -> str:
    """Connect once and say in words what was found; raise DesktopBackupError otherwise."""
    engine = open_engine(url, password)
    try:
        try:
            with engine.connect() as conn:
                tables = set(inspect(conn).get_table_names())
        except SQLAlchemyError as exc:
            raise friendly_error(exc, engine.url) from exc
        where = describe(parse_url(url))
        where = where[:1].upper() + where[1:]
        missing = [name for name in (mapping.tenant_table, mapping.users_table)
                   if name not in tables]
        if missing:
            raise DesktopBackupError(
                f"Connected, but {where[:1].lower() + where[1:]} does not look like the billing "
                f"database: it has no {' or '.join(repr(m) for m in missing)} table.")
        return (f"Connected. {where} is a billing database with "
                f"{wording.plural(len(tables), 'table')}.")
    finally:
        engine.dispose()


def organizations(site: Site) -> list[Organization]:
    """Every organization, for the super admin's picker."""
    try:
        with site.engine.connect() as conn:
            return list_organizations(conn, site.mapping)
    except SQLAlchemyError as exc:
        raise friendly_error(exc, site.engine.url) from exc


def organization(site: Site, key: int | str) -> Organization:
    """One organization by id or code (the command line's --org)."""
    try:
        with site.engine.connect() as conn:
            return find_organization(conn, site.mapping, key)
    except SQLAlchemyError as exc:
        raise friendly_error(exc, site.engine.url) from exc


def acting_for(site: Site, session: Session, key: int | str) -> Organization:
    """The organization `key` names, once the logged-in user may act for it (or a
    LoginRefused saying why not)."""
    org = organization(site, key)
    authorize(session, org)
    return org


def console_tables_to_ask(engine: Engine) -> list[str]:
    """The console's tables a database that is not the billing app's would get; [] where
    nothing needs asking (the billing database, or one where they were allowed before)."""
    return missing_console_tables(engine)


def allow_console_tables(engine: Engine) -> None:
    """Create the console's bookkeeping tables (a person said yes); the rest (keys, off-site
    queue, ...) follow when first needed, as in the billing database."""
    try:
        ensure_tables(engine)
        check_console_schema_serves(engine)  # notes which billing database it serves
    except SQLAlchemyError as exc:
        raise friendly_error(exc, engine.url) from exc


def require_console_tables(engine: Engine, allowed: bool) -> None:
    """Before a command touches the database: create the console's tables when `allowed`,
    else refuse with the sentence naming them and how to allow it (nothing done)."""
    tables = missing_console_tables(engine)
    if not tables:
        return
    if not allowed:
        raise console_tables_refusal(tables, console_schema_of(engine))
    allow_console_tables(engine)


def choices(result: LoginResult) -> list[Organization]:
    """The organizations the login must choose between: several when the user administers
    more than one (memberships through a table), else none (one, or a super admin's picker)."""
    session = result.session
    if session.is_super_admin or session.organization is not None:
        return []
    return list(session.may_act_for)


def acting_as(result: LoginResult, org: Organization) -> LoginResult:
    """The login acting for `org`, which must be one its user administers (LoginRefused
    otherwise: a choice the window offered is still checked here)."""
    return replace(result, session=result.session.acting_for(org))


@dataclass(frozen=True)
class ActingUser:
    """Who did it and for which organization, as the audit records it."""

    user_id: int
    username: str
    organization_id: int
