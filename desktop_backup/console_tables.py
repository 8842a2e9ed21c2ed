"""Whether the console may add its own tables to a database, and which ones it would add.

The billing app's database already has ``auto_backup_logs``, or at least records the Laravel
migration that makes it, so there the console adds its bookkeeping tables without asking, as
it always has. Any other
schema is someone else's: tables appear in it only once a person allowed it (the window asks,
the command line takes --create-console-tables or the settings' create_console_tables). Once
allowed, ``auto_backup_logs`` exists, and that is the record that the question was answered.

With a console schema (the setting console_schema, --console-schema; db.keep_console_tables_in)
the tables go there instead, and only ``auto_backup_logs`` there answers the question: a new
schema (a database, on MySQL/MariaDB; a file beside the billing file, on SQLite) is made only
once someone allowed it, even beside the billing app's own tables.
"""

from __future__ import annotations

from sqlalchemy import MetaData, Table, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from desktop_backup.authenticity import check_console_schema_serves
from desktop_backup.db import console_schema, console_table_names, friendly_error
from desktop_backup.errors import ConsoleTablesNotAllowed
from desktop_backup.tenancy import CONSOLE_TABLES

LARAVEL_MIGRATIONS = "migrations"
MARKER = "auto_backup_logs"  # the billing app's; present once the console may keep its tables
CLI_FLAG = "--create-console-tables"
SETTING = "create_console_tables"


def missing_console_tables(engine: Engine) -> list[str]:
    """The console's tables this database lacks, when it has not agreed to hold them yet;
    [] for the billing database (or one where they were allowed before)."""
    try:
        with engine.connect() as conn:
            existing = console_table_names(conn)
            allowed = MARKER in existing or (console_schema(conn) is None
                                             and _billing_migration_ran(conn, existing))
        if allowed:
            check_console_schema_serves(engine)
            return []
    except SQLAlchemyError as exc:
        raise friendly_error(exc, engine.url) from exc
    return sorted(CONSOLE_TABLES - existing)


def _billing_migration_ran(conn: Connection, existing: set[str]) -> bool:
    """The billing app's Laravel migrations list the one that makes auto_backup_logs: its
    database, even before the table itself is there (a fresh copy, the demo)."""
    if LARAVEL_MIGRATIONS not in existing:
        return False
    table = Table(LARAVEL_MIGRATIONS, MetaData(), autoload_with=conn)
    if "migration" not in table.c:
        return False
    found = conn.execute(select(table.c.migration).where(
        table.c.migration.like(f"%create_{MARKER}_table")).limit(1)).first()
    return found is not None


def may_create(engine: Engine) -> bool:
    """True where the console may create its tables without asking (the login throttle asks
    this before keeping its count in the database)."""
    return not missing_console_tables(engine)


def refusal(tables: list[str], schema: str | None = None) -> ConsoleTablesNotAllowed:
    """The one sentence the command line ends with when the tables are not allowed."""
    where = ("This database is not the billing app's, and the console would add its own "
             "tables to it" if schema is None else
             f"The console keeps its own tables in '{schema}', and would make them there")
    return ConsoleTablesNotAllowed(
        f"{where} ({', '.join(tables)}), so nothing was done; run again with {CLI_FLAG}, "
        f'or set "{SETTING}": true in the settings, to allow it.')
