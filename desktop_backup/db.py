"""Engines for SQLite, MySQL/MariaDB and PostgreSQL, reflection, and plain-words errors.

Every connection the console opens goes through :func:`open_engine`, so driver choice,
connection options (utf8mb4, SQLite foreign keys) and the translation of driver errors into
one sentence live in one place.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from sqlalchemy import MetaData, Table, create_engine, event, inspect, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from desktop_backup.errors import DatabaseAuthRefused, DatabaseUnavailable, UsageError


def parse_url(url: str | URL, password: str | None = None) -> URL:
    """Parse a URL, add the password from the keyring, pick the fastest installed driver."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise UsageError(
            f"'{url}' is not a database address; use for example sqlite:///billing.db, "
            "mysql://user@host/db or postgresql://user@host/db."
        ) from exc
    if password is not None:
        parsed = parsed.set(password=password)
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("mysql", "mariadb") and not driver:
        driver = "mysqldb" if importlib.util.find_spec("MySQLdb") else "pymysql"
        parsed = parsed.set(drivername=f"mysql+{driver}")
    elif backend in ("postgresql", "postgres") and not driver:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def describe(url: URL) -> str:
    """Where a database is, in words a shop owner recognises (never with the password)."""
    if url.get_backend_name() == "sqlite":
        return f"the SQLite file {url.database}"
    port = f":{url.port}" if url.port else ""
    return f"the database '{url.database}' on {url.host or 'localhost'}{port}"


def open_engine(url: str | URL, password: str | None = None, *, check: bool = True) -> Engine:
    """An engine for the billing database, checked with one round trip unless told not to."""
    parsed = parse_url(url, password)
    backend = parsed.get_backend_name()
    kwargs: dict = {"future": True}
    if backend == "sqlite":
        path = parsed.database
        if not path or path == ":memory:":
            raise UsageError("An SQLite billing database must be a file, not memory.")
        if not Path(path).is_file():
            raise DatabaseUnavailable(f"There is no SQLite database at {path}.")
    elif backend == "mysql":
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
        kwargs["pool_pre_ping"] = True
    elif backend == "postgresql":
        kwargs["pool_pre_ping"] = True
    else:
        raise UsageError(
            f"'{backend}' databases are not supported; use SQLite, MySQL/MariaDB or PostgreSQL."
        )
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError, ImportError) as exc:
        raise DatabaseUnavailable(
            f"The database driver for '{parsed.drivername}' is not installed; "
            "install it or use another address."
        ) from exc
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
    if check:
        try:
            with engine.connect() as conn:
                # SQLite opens any file lazily; reading the schema version reads its header.
                probe = "PRAGMA schema_version" if backend == "sqlite" else "SELECT 1"
                conn.execute(text(probe))
        except SQLAlchemyError as exc:
            engine.dispose()
            raise friendly_error(exc, parsed) from exc
    return engine


def _sqlite_on_connect(dbapi_conn, _record) -> None:
    # Laravel turns foreign keys on for SQLite; cascades must behave as they do in the app.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def friendly_error(exc: BaseException, url: URL) -> DatabaseUnavailable:
    """Translate a driver error into one sentence about what to check."""
    error = _friendly_error(exc, url)
    message = str(error)
    # describe() is written to sit mid-sentence ("the database ..."); a sentence starts upper.
    return type(error)(message[:1].upper() + message[1:])  # keeps DatabaseAuthRefused


def _friendly_error(exc: BaseException, url: URL) -> DatabaseUnavailable:
    where = describe(url)
    orig = getattr(exc, "orig", None) or exc
    message = str(orig).lower()
    code = orig.args[0] if getattr(orig, "args", None) and isinstance(orig.args[0], int) else None
    if "file is not a database" in message or "malformed" in message:
        return DatabaseUnavailable(f"{where} is damaged or is not an SQLite database.")
    if code in (2002, 2003, 2005, 2006, 2013) or "connection refused" in message or (
        "could not connect" in message or "can't connect" in message
    ):
        return DatabaseUnavailable(f"Cannot reach {where}; check that the server is running.")
    if "server closed the connection" in message or "lost connection" in message or (
        "gone away" in message or "terminating connection" in message
    ):
        return DatabaseUnavailable(f"The connection to {where} was lost; try again.")
    if code == 1045 or "password authentication failed" in message or "access denied" in message \
            or ('role "' in message and "does not exist" in message):
        return DatabaseAuthRefused(f"{where} refused the database user name or password.")
    if code == 1049 or ("database" in message and "does not exist" in message):
        return DatabaseUnavailable(f"{where} does not exist on that server.")
    if "unable to open database" in message:
        return DatabaseUnavailable(
            f"{where} cannot be opened; check that it exists and is readable."
        )
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return DatabaseUnavailable(f"The connection to {where} was lost; try again.")
    first_line = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return DatabaseUnavailable(f"{where} reported an error: {first_line}")


def reflect(conn: Connection | Engine, only: list[str] | None = None) -> MetaData:
    """The live schema, as the database describes it (never a hard-coded table list)."""
    metadata = MetaData()
    metadata.reflect(bind=conn, only=only, resolve_fks=False)
    return metadata


def server_version(conn: Connection) -> str:
    """The dialect and server version, recorded in every archive's manifest."""
    info = conn.dialect.server_version_info or ()
    version = ".".join(str(part) for part in info)
    name = conn.dialect.name
    if name == "mysql" and conn.dialect._is_mariadb:  # noqa: SLF001 - public enough, no API
        name = "mariadb"
    return f"{name} {version}".strip()


def create_once(engine: Engine, table: Table) -> None:
    """Create one of the console's own tables when missing; another workstation (or process)
    creating it at the same moment is not an error (MariaDB's DDL is not transactional)."""
    try:
        with engine.begin() as conn:
            table.create(conn, checkfirst=True)
    except SQLAlchemyError:
        with engine.connect() as conn:
            if table.name not in inspect(conn).get_table_names():
                raise


def console_table(engine: Engine, table: Table) -> Table:
    """One of the console's own tables, created once when missing, as the database has it
    (reflected: an older console may have made it)."""
    try:
        create_once(engine, table)
        with engine.connect() as conn:
            return Table(table.name, MetaData(), autoload_with=conn)
    except SQLAlchemyError as exc:
        raise friendly_error(exc, engine.url) from exc
