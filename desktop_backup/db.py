"""Engines for SQLite, MySQL/MariaDB and PostgreSQL, reflection, and plain-words errors.

Every connection the console opens goes through :func:`open_engine`, so driver choice,
connection options (utf8mb4, SQLite foreign keys) and the translation of driver errors into
one sentence live in one place.
"""

from __future__ import annotations

import importlib.util
import re
import sqlite3
from functools import partial
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


def open_engine(url: str | URL, password: str | None = None, *, check: bool = True,
                console_schema: str = "") -> Engine:
    """An engine for the billing database, checked with one round trip unless told not to.

    `console_schema` names where the console keeps its own tables when not beside the
    billing tables (see keep_console_tables_in); "" keeps them in the billing schema."""
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
    keep_console_tables_in(engine, console_schema)
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


CONSOLE_SCHEMA = "console_schema"  # the engine's execution option that carries the name
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def keep_console_tables_in(engine: Engine, name: str) -> Engine:
    """Carry with `engine` the schema the console keeps its own tables in, so that every
    definition and reflection of them (console_metadata) and every check for them
    (console_table_names) looks there, and the billing schema gets none of them.

    PostgreSQL: a schema of the same database. MySQL/MariaDB: a database of the same server.
    SQLite: the file `<billing stem>.<name>.sqlite` beside the billing file, attached as
    `name` to every connection once it exists (ensure_console_schema makes it). The console
    writes its own rows in transactions of their own (the audit after a restore's commit,
    never inside it), so no transaction depends on spanning both schemas."""
    if not name:
        return engine
    if not isinstance(name, str) or not _SCHEMA_NAME.fullmatch(name) or (
            engine.dialect.name == "sqlite" and name.lower() in ("main", "temp")):
        raise UsageError(f"'{name}' cannot name the console's schema; use letters, digits "
                         "and _ only (for example desktop_backup), not main or temp.")
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", partial(_attach_console_file,
                                                console_file(engine.url, name), name))
    engine.update_execution_options(**{CONSOLE_SCHEMA: name})
    return engine


def console_file(url: URL, name: str) -> Path:
    """Where an SQLite billing file's console keeps its tables: beside it, named for both."""
    billing = Path(url.database or "")
    return billing.with_name(f"{billing.stem}.{name}.sqlite")


def _attach_console_file(path: Path, name: str, dbapi_conn, _record) -> None:
    # Only once it exists: attaching would create it, before anyone allowed the console's
    # tables (until then, the console's tables are simply not there, and it asks).
    if path.is_file():
        cursor = dbapi_conn.cursor()
        cursor.execute(f'ATTACH DATABASE ? AS "{name}"', (str(path),))
        cursor.close()


def console_schema(bind: Engine | Connection) -> str | None:
    """The schema the console keeps its own tables in; None: the billing schema itself."""
    return bind.get_execution_options().get(CONSOLE_SCHEMA) or None


def console_metadata(bind: Engine | Connection) -> MetaData:
    """A MetaData whose tables are in the console's schema: for defining and reflecting the
    console's own tables (never the billing tables)."""
    return MetaData(schema=console_schema(bind))


def defined(md: MetaData, name: str) -> Table:
    """The table `name` defined in `md` (in a console_metadata, its key carries the schema)."""
    return md.tables[f"{md.schema}.{name}" if md.schema else name]


def console_table_names(conn: Connection) -> set[str]:
    """The tables in the console's schema (the billing schema's, without one); none while
    that schema does not exist yet."""
    schema = console_schema(conn)
    inspector = inspect(conn)
    if schema is not None and schema not in inspector.get_schema_names():
        return set()
    return set(inspector.get_table_names(schema=schema))


def ensure_console_schema(engine: Engine) -> None:
    """Make the console's schema (or SQLite file) when it is missing: called only where the
    console's tables may be created (someone allowed them)."""
    schema = console_schema(engine)
    if schema is None:
        return
    with engine.connect() as conn:
        if schema in inspect(conn).get_schema_names():
            return
    if engine.dialect.name == "sqlite":
        sqlite3.connect(console_file(engine.url, schema)).close()  # an empty database file
        engine.dispose()  # connections opened from now on attach it
        return
    quoted = engine.dialect.identifier_preparer.quote(schema)
    create = (f"CREATE DATABASE IF NOT EXISTS {quoted} CHARACTER SET utf8mb4"
              if engine.dialect.name == "mysql" else f"CREATE SCHEMA IF NOT EXISTS {quoted}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(create)
    except SQLAlchemyError as exc:  # most often: the database user may not make it
        orig = str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""]
        kind = "database" if engine.dialect.name == "mysql" else "schema"
        raise DatabaseUnavailable(
            f"The console could not make the {kind} '{schema}' for its own tables ({orig[0]}); "
            f"make it, or let the database user make it, or choose another console schema."
        ) from exc


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
    ensure_console_schema(engine)
    try:
        with engine.begin() as conn:
            table.create(conn, checkfirst=True)
    except SQLAlchemyError:
        with engine.connect() as conn:
            if table.name not in inspect(conn).get_table_names(schema=table.schema):
                raise


def console_table(engine: Engine, table: Table) -> Table:
    """One of the console's own tables, created once when missing, as the database has it
    (reflected: an older console may have made it). `table` is defined in
    console_metadata(engine), so both happen in the console's schema."""
    try:
        create_once(engine, table)
        with engine.connect() as conn:
            return Table(table.name, MetaData(schema=table.schema), autoload_with=conn)
    except SQLAlchemyError as exc:
        raise friendly_error(exc, engine.url) from exc
