"""Benchmark: our backup of one big organization against the databases' own dump tools.

    python bench/backup_bench.py [--dialects sqlite,mysql,postgres] [--scale 16] [--runs 3]
                                 [--rebuild] [--profile] [--json FILE] [--strict]

For each dialect it makes (or reuses) a bench database holding the demo schema at ``--scale``
(organization 1, MEDP, has about 63,000 rows per unit of scale: scale 16 is about one million
rows, the other two organizations are 10x and 100x smaller), then times, ``--runs`` times each
and interleaved, in fresh processes:

* ours: ``backup.write_archive`` of organization 1 (a native zip, checked and fsynced), run in
  a new Python process, so the time includes start-up and the peak RSS is the backup's alone;
* the reference on exactly the same rows:
  MariaDB    ``mysqldump --single-transaction --no-create-info --where=organization_id=N | gzip``
  PostgreSQL ``psql`` with one ``\\copy (SELECT * FROM t WHERE organization_id=N) TO STDOUT`` per
             table, in one REPEATABLE READ transaction, ``| gzip``
  SQLite     the ``sqlite3`` shell's ``.mode insert t`` + ``SELECT * ... WHERE organization_id=N``
             per table, ``| gzip``.

The references export only the tables that carry ``organization_id`` (the dump tools cannot
follow foreign keys); ours also exports the child-only tables (``user_permissions``, return
and transfer line items), so compare rows/s, not seconds.

Targets (ratios in the same run on the same rows): our rows/s >= 0.5x the reference on MariaDB
and PostgreSQL and >= 1.0x on SQLite; our peak RSS <= 150 MB.

Bench databases are kept between runs (``bench_backup_s<scale>`` on the servers, a SQLite file
under ``bench/.cache``) and reused while their row counts match; ``--rebuild`` reloads them.
Server addresses come from DESKTOP_BACKUP_TEST_MYSQL_URL / DESKTOP_BACKUP_TEST_PG_URL (as for
the tests), else the local defaults below, or --mysql-url / --pg-url.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = HERE / ".cache"
DEFAULT_URLS = {
    "mysql": "mysql+pymysql://root@127.0.0.1:3306/test",
    "postgres": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
}
URL_ENV = {"mysql": "DESKTOP_BACKUP_TEST_MYSQL_URL", "postgres": "DESKTOP_BACKUP_TEST_PG_URL"}
DIALECTS = ("sqlite", "mysql", "postgres")
LABELS = {"sqlite": "SQLite", "mysql": "MariaDB/MySQL", "postgres": "PostgreSQL"}
THROUGHPUT_TARGET = 1.0  # issue 21: at or above the native tool on every dialect
PYMYSQL_TARGET = 0.5  # issue 21: MariaDB through PyMySQL (no mysqlclient on a Mac)
RSS_TARGET_MB = 150.0
ORG_CODE = "MEDP"
REFERENCE_NAMES = {
    "sqlite": "sqlite3 .mode insert | gzip",
    "mysql": "mysqldump --single-transaction | gzip",
    "postgres": "psql \\copy TO STDOUT | gzip",
}


# --- bench databases -----------------------------------------------------------------------

def scale_tag(scale: float, shape: str = "demo") -> str:
    tag = "s" + f"{scale:g}".replace(".", "_").replace("-", "m")
    return tag if shape == "demo" else f"{shape}_{tag}"


def db_name(scale: float, shape: str = "demo") -> str:
    return f"bench_backup_{scale_tag(scale, shape)}"


def schema_of(shape: str):
    """The bench shape's tables: the demo's 21, or the wide shape's 117 (bench/wide_schema.py)."""
    if shape == "wide":
        from wide_schema import build_schema
    else:
        from desktop_backup.demo import build_schema
    return build_schema()


@dataclass
class Target:
    """One bench database: where it is and how to reach it."""

    dialect: str
    url: str  # SQLAlchemy URL of the bench database (with password, never printed)
    admin_url: str = ""  # the server's base URL, for CREATE/DROP DATABASE
    shape: str = "demo"  # demo | wide

    @property
    def sqlite_path(self) -> Path:
        from sqlalchemy.engine import make_url

        return Path(make_url(self.url).database)


def make_targets(dialects: list[str], scale: float, cache: Path, urls: dict[str, str],
                 shape: str = "demo") -> dict[str, Target]:
    from sqlalchemy.engine import make_url

    targets = {}
    for dialect in dialects:
        if dialect == "sqlite":
            path = cache / f"{db_name(scale, shape)}.sqlite"
            targets[dialect] = Target(dialect, f"sqlite:///{path}", shape=shape)
        else:
            base = make_url(urls[dialect])
            url = base.set(database=db_name(scale, shape)).render_as_string(hide_password=False)
            targets[dialect] = Target(dialect, url, base.render_as_string(hide_password=False),
                                      shape)
    return targets


def sidecar(cache: Path, scale: float, shape: str = "demo") -> Path:
    return cache / f"{db_name(scale, shape)}.counts.json"


def expected_counts(cache: Path, scale: float, shape: str = "demo") -> dict[str, int] | None:
    path = sidecar(cache, scale, shape)
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return data["counts"] if data.get("scale") == scale else None


def actual_counts(target: Target, tables: list[str]) -> dict[str, int] | None:
    """Rows per table in the bench database, or None when it is missing or incomplete."""
    from sqlalchemy import create_engine, inspect

    if target.dialect == "sqlite" and not target.sqlite_path.is_file():
        return None
    engine = create_engine(target.url)
    try:
        with engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
            if not set(tables) <= present:
                return None
            quote = conn.dialect.identifier_preparer.quote
            return {t: int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {quote(t)}").scalar())
                    for t in tables}
    except Exception:  # noqa: BLE001 - no database, no server: it needs loading (or fails there)
        return None
    finally:
        engine.dispose()


def ensure_databases(targets: dict[str, Target], scale: float, cache: Path,
                     rebuild: bool) -> dict[str, int]:
    """Reuse bench databases whose row counts match; load the others in a child process."""
    cache.mkdir(parents=True, exist_ok=True)
    shape = next(iter(targets.values())).shape
    want = None if rebuild else expected_counts(cache, scale, shape)
    stale = []
    for dialect, target in targets.items():
        if want is not None and actual_counts(target, sorted(want)) == want:
            print(f"  {LABELS[dialect]}: reusing {db_name(scale, shape)} "
                  f"({sum(want.values()):,} rows in {len(want)} tables)")
        else:
            stale.append(dialect)
    if stale:
        print(f"  loading scale {scale:g} into {', '.join(LABELS[d] for d in stale)} "
              "(generation holds every row in memory; this takes a few minutes) ...",
              flush=True)
        started = time.monotonic()
        spec = {"scale": scale, "cache": str(cache), "shape": shape,
                "targets": [asdict(targets[d]) for d in stale]}
        subprocess.run([sys.executable, str(Path(__file__).resolve()), "_load",
                        json.dumps(spec)], check=True)
        print(f"  loaded in {time.monotonic() - started:.0f} s", flush=True)
    counts = expected_counts(cache, scale, shape)
    assert counts is not None
    return counts


def load_child(spec: dict) -> None:
    """(Child process) generate the demo rows once and load every stale bench database (the
    wide shape's own tables are generated again for each, table by table)."""
    from desktop_backup.demo import generate_rows

    scale, shape = spec["scale"], spec.get("shape", "demo")
    started = time.monotonic()
    rows = generate_rows(scale if shape == "demo" else wide_demo_scale(scale))
    print(f"    generated {sum(len(r) for r in rows.values()):,} rows in "
          f"{time.monotonic() - started:.0f} s", flush=True)
    counts = {t.name: len(rows.get(t.name, [])) for t in schema_of(shape).sorted_tables}
    if shape == "wide":
        from wide_schema import plan_rows

        counts.update({name: sum(per_org.values())
                       for name, per_org in plan_rows(scale).items()})
    for item in spec["targets"]:
        target = Target(**item)
        started = time.monotonic()
        _load_target(target, rows, scale)
        print(f"    {LABELS[target.dialect]}: loaded in {time.monotonic() - started:.0f} s",
              flush=True)
    path = sidecar(Path(spec["cache"]), scale, shape)
    path.write_text(json.dumps({"scale": scale, "counts": counts}, indent=1))


def wide_demo_scale(scale: float) -> float:
    from wide_schema import DEMO_SCALE

    return DEMO_SCALE * scale


def _load_target(target: Target, rows: dict[str, list[dict]], scale: float) -> None:
    from sqlalchemy import create_engine

    name = db_name_of(target)
    if target.dialect == "sqlite":
        path = target.sqlite_path
        tmp = path.with_name(path.name + ".partial")
        tmp.unlink(missing_ok=True)
        engine = create_engine(f"sqlite:///{tmp}")
    else:
        admin = create_engine(target.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            if target.dialect == "mysql":
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
                conn.exec_driver_sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 "
                                     "COLLATE utf8mb4_unicode_ci")
            else:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                conn.exec_driver_sql(f"CREATE DATABASE {name} ENCODING 'UTF8' "
                                     "TEMPLATE template0")
        admin.dispose()
        engine = create_engine(target.url)
    metadata = schema_of(target.shape)
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
            if target.dialect == "mysql":
                conn.exec_driver_sql("SET unique_checks = 0")
            for table in metadata.sorted_tables:
                _insert_table(conn, table, rows.get(table.name, []))
            if target.shape == "wide":
                _insert_wide(conn, metadata, scale)
            if target.dialect == "postgres":
                for table in metadata.sorted_tables:
                    pk = next(iter(table.primary_key.columns))
                    conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', '{pk.name}'), "
                        f"COALESCE((SELECT MAX({pk.name}) FROM {table.name}), 0) + 1, false)")
    finally:
        engine.dispose()
    if target.dialect == "sqlite":
        tmp.replace(target.sqlite_path)
    elif target.dialect == "postgres":
        # Set hint bits and the visibility map now, so no timed run pays for them.
        vacuum = create_engine(target.url, isolation_level="AUTOCOMMIT")
        with vacuum.connect() as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        vacuum.dispose()


def db_name_of(target: Target) -> str:
    from sqlalchemy.engine import make_url

    return make_url(target.url).database


def _insert_table(conn, table, table_rows: list[dict]) -> None:
    """Insert like demo.load_demo does; big tables through the driver's fast path."""
    from sqlalchemy import insert
    from sqlalchemy.types import JSON

    if not table_rows:
        return
    fast = conn.dialect.name in ("mysql", "postgresql") and len(table_rows) > 10_000 and not any(
        isinstance(c.type, JSON) for c in table.columns)
    if not fast:
        for start in range(0, len(table_rows), 20_000):
            conn.execute(insert(table), table_rows[start:start + 20_000])
        return
    names = [c.name for c in table.columns]
    defaults = {c.name: (c.default.arg if c.default is not None and c.default.is_scalar else None)
                for c in table.columns}
    tuples = [tuple(row[n] if n in row else defaults[n] for n in names) for row in table_rows]
    _insert_tuples(conn, table, names, tuples)


def _insert_wide(conn, metadata, scale: float) -> None:
    """The wide shape's own tables, generated table by table (never all in memory)."""
    import itertools

    from sqlalchemy import insert
    from wide_schema import first_ids, plan_rows, table_rows, wide_tables

    plan = plan_rows(scale)
    firsts = first_ids(plan)
    for wide in wide_tables():
        table = metadata.tables[wide.name]
        names = [c.name for c in table.columns]
        rows = table_rows(wide, plan, firsts)
        if conn.dialect.name in ("mysql", "postgresql"):
            _insert_tuples(conn, table, names, rows)
            continue
        while chunk := list(itertools.islice(rows, 20_000)):
            conn.execute(insert(table), [dict(zip(names, r, strict=True)) for r in chunk])


def _insert_tuples(conn, table, names: list[str], tuples) -> None:
    """COPY on PostgreSQL, multi-row INSERTs of 20,000 rows on MariaDB."""
    import itertools

    raw = conn.connection.dbapi_connection
    quote = conn.dialect.identifier_preparer.quote
    column_list = ", ".join(quote(n) for n in names)
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cursor:
            with cursor.copy(f"COPY {quote(table.name)} ({column_list}) FROM STDIN") as copy:
                for values in tuples:
                    copy.write_row(values)
    else:
        sql = (f"INSERT INTO {quote(table.name)} ({column_list}) VALUES "
               f"({', '.join(['%s'] * len(names))})")
        cursor = raw.cursor()
        try:
            tuples = iter(tuples)
            while chunk := list(itertools.islice(tuples, 5_000)):
                cursor.executemany(sql, chunk)
        finally:
            cursor.close()


# --- measuring -----------------------------------------------------------------------------

@dataclass
class Run:
    seconds: float
    rss_kb: int
    size: int
    rows: int
    inner_seconds: float | None = None


# A tiny launcher between us and the measured command. Linux charges an exec'd process with
# the high-water RSS of the image it replaced, so a command spawned straight from this (big)
# process would report at least our own RSS; forked from a fresh `python -I -S` it starts at
# about 7 MB. The launcher also times the command without its own start-up.
_LAUNCHER = """\
import json, os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_pid, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
with open(sys.argv[1], "w") as f:
    json.dump({"seconds": seconds, "rss_kb": usage.ru_maxrss,
               "code": os.waitstatus_to_exitcode(status)}, f)
"""


def timed(cmd: list[str], stdout: Path, stderr: Path, env: dict | None = None
          ) -> tuple[float, int]:
    """Wall seconds and peak RSS (KB, of the largest process in the tree) of one command."""
    report = stdout.with_suffix(".rusage.json")
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        subprocess.run([sys.executable, "-I", "-S", "-c", _LAUNCHER, str(report), *cmd],
                       stdout=out, stderr=err, env=env, check=True)
    result = json.loads(report.read_text())
    if result["code"] != 0:
        raise RuntimeError(f"{shlex.join(cmd)[:300]} failed ({result['code']}):\n"
                           + stderr.read_text(errors="replace")[-3000:])
    return result["seconds"], result["rss_kb"]


def run_ours(target: Target, org_id: int, work: Path, profile: Path | None = None,
             pymysql: bool = False) -> Run:
    out_dir = Path(tempfile.mkdtemp(prefix="ours-", dir=work))
    args = {"url": target.url, "org_id": org_id, "folder": str(out_dir),
            "profile": str(profile) if profile else None, "pymysql": pymysql}
    cmd = [sys.executable, str(Path(__file__).resolve()), "_backup", json.dumps(args)]
    seconds, rss = timed(cmd, work / "ours.out", work / "ours.err")
    result = json.loads((work / "ours.out").read_text())
    shutil.rmtree(out_dir, ignore_errors=True)
    return Run(seconds, rss, result["size"], result["rows"], result["seconds"])


def backup_child(args: dict) -> None:
    """(Child process) one backup of one organization, as the console makes it."""
    from sqlalchemy.engine import make_url

    from desktop_backup.backup import write_archive
    from desktop_backup.config import SchemaMapping
    from desktop_backup.db import open_engine
    from desktop_backup.work import Actor, Site

    # As a shop owner's `mysql://` address would: the fastest installed driver
    # (mysqlclient where it is installed, PyMySQL otherwise).
    url = make_url(args["url"])
    if url.get_backend_name() == "mysql":
        url = url.set(drivername="mysql+pymysql" if args.get("pymysql") else "mysql")
    engine = open_engine(url)
    print(f"driver: {engine.dialect.driver}", file=sys.stderr)
    target = Path(args["folder"]) / "bench_backup.zip"

    def backup():
        return write_archive(Site(engine, SchemaMapping()), args["org_id"], target,
                             Actor(0, "bench"), trigger="cli")

    started = time.perf_counter()
    if args.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
        manifest = profiler.runcall(backup)
        profiler.dump_stats(args["profile"])
    else:
        manifest = backup()
    elapsed = time.perf_counter() - started
    print(json.dumps({"rows": manifest.total_rows, "size": target.stat().st_size,
                      "seconds": elapsed,
                      "tables": {t.name: t.rows for t in manifest.tables}}))


def reference_pipeline(target: Target, tables: list[str], org_id: int, work: Path,
                       gzip_level: int = 1) -> tuple[list[str], dict]:
    """The reference dump as one shell pipeline (bash -o pipefail), and its environment.

    gzip runs at level 1 by default, as in issue 21's reference (``| gzip -1``), the level
    closest to our zip's deflate level 1; ``--gzip-level 6`` is gzip's own default."""
    from sqlalchemy.engine import make_url

    gzip_out = f"gzip -{gzip_level} -c > {shlex.quote(str(work / 'reference.gz'))}"
    env = dict(os.environ)
    if target.dialect == "sqlite":
        script = work / "reference.sqlite.sql"
        lines = [".bail on", "BEGIN;"]
        for t in tables:
            lines += [f".mode insert {t}", f'SELECT * FROM "{t}" WHERE organization_id = {org_id};']
        lines.append("COMMIT;")
        script.write_text("\n".join(lines) + "\n")
        pipeline = (f"sqlite3 -batch -readonly {shlex.quote(str(target.sqlite_path))} "
                    f"< {shlex.quote(str(script))} | {gzip_out}")
    elif target.dialect == "mysql":
        url = make_url(target.url)
        if url.password:
            env["MYSQL_PWD"] = str(url.password)
        pipeline = (
            f"mysqldump --single-transaction --no-create-info "
            f"--where={shlex.quote(f'organization_id={org_id}')} "
            f"-h {shlex.quote(url.host or '127.0.0.1')} -P {url.port or 3306} "
            f"-u {shlex.quote(url.username or 'root')} {shlex.quote(url.database)} "
            f"{' '.join(shlex.quote(t) for t in tables)} | {gzip_out}")
    else:
        url = make_url(target.url)
        if url.password:
            env["PGPASSWORD"] = str(url.password)
        script = work / "reference.psql.sql"
        lines = ["BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"]
        lines += [f'\\copy (SELECT * FROM "{t}" WHERE organization_id = {org_id}) TO STDOUT'
                  for t in tables]
        lines.append("COMMIT;")
        script.write_text("\n".join(lines) + "\n")
        pipeline = (
            f"psql -X -q -v ON_ERROR_STOP=1 -h {shlex.quote(url.host or '127.0.0.1')} "
            f"-p {url.port or 5432} -U {shlex.quote(url.username or 'postgres')} "
            f"-d {shlex.quote(url.database)} -f {shlex.quote(str(script))} | {gzip_out}")
    return ["bash", "-o", "pipefail", "-c", pipeline], env


def run_reference(cmd: list[str], env: dict, rows: int, work: Path,
                  check: str | None = None) -> Run:
    seconds, rss = timed(cmd, work / "reference.out", work / "reference.err", env)
    output = work / "reference.gz"
    size = output.stat().st_size
    if check:  # untimed: the dump really holds the rows we credit it with
        found = count_dumped_rows(check, output)
        if found != rows:
            raise RuntimeError(f"the {check} reference dumped {found} rows, expected {rows}")
    output.unlink()
    return Run(seconds, rss, size, rows)


def count_dumped_rows(dialect: str, path: Path) -> int:
    """Rows in a reference dump: COPY text lines, sqlite3 INSERT lines, mysqldump tuples
    (one per line in MariaDB's extended inserts; newlines in values are escaped by all three)."""
    import gzip

    count = 0
    with gzip.open(path, "rb") as f:
        for line in f:
            if dialect == "postgres":
                count += 1
            elif dialect == "sqlite":
                count += line.startswith(b"INSERT INTO ")
            else:
                count += line.startswith(b"(")
    return count


def scope_of(target: Target) -> tuple[int, list[str], list[str], dict[str, int]]:
    """Organization 1's id, its tenant-column tables, its child-only tables, and the rows the
    reference exports from each tenant-column table (counted once, untimed)."""
    from sqlalchemy import create_engine

    from desktop_backup.config import SchemaMapping
    from desktop_backup.db import reflect
    from desktop_backup.tenancy import discover_scope

    mapping = SchemaMapping()
    engine = create_engine(target.url)
    try:
        with engine.connect() as conn:
            org_id = int(conn.exec_driver_sql(
                f"SELECT id FROM organizations WHERE code = '{ORG_CODE}'").scalar_one())
            scope = discover_scope(reflect(conn), mapping)
            tenant = [s.name for s in scope.tables if s.tenant_column == mapping.tenant_column]
            odd = [s.name for s in scope.tables if s.tenant_column
                   and s.tenant_column != mapping.tenant_column]
            assert not odd, f"tables keyed by another column: {odd}"
            children = [s.name for s in scope.tables if not s.tenant_column]
            quote = conn.dialect.identifier_preparer.quote
            rows = {t: int(conn.exec_driver_sql(
                f"SELECT COUNT(*) FROM {quote(t)} WHERE organization_id = {org_id}").scalar())
                for t in tenant}
    finally:
        engine.dispose()
    return org_id, tenant, children, rows


@dataclass
class DialectResult:
    dialect: str
    server: str
    org_id: int
    tenant_tables: int
    child_tables: int
    target: float = THROUGHPUT_TARGET
    gzip_level: int = 1
    ours: list[Run] = field(default_factory=list)
    reference: list[Run] = field(default_factory=list)

    @staticmethod
    def median(runs: list[Run]) -> Run:
        seconds = statistics.median(r.seconds for r in runs)
        inner = [r.inner_seconds for r in runs if r.inner_seconds is not None]
        return Run(seconds, max(r.rss_kb for r in runs), int(statistics.median(
            r.size for r in runs)), runs[0].rows, statistics.median(inner) if inner else None)

    @property
    def ratio(self) -> float:
        ours, ref = self.median(self.ours), self.median(self.reference)
        return (ours.rows / ours.seconds) / (ref.rows / ref.seconds)

    @property
    def ours_rss_mb(self) -> float:
        return max(r.rss_kb for r in self.ours) / 1024


def server_version_of(target: Target) -> str:
    from sqlalchemy import create_engine

    from desktop_backup.db import server_version

    engine = create_engine(target.url)
    try:
        with engine.connect() as conn:
            return server_version(conn)
    finally:
        engine.dispose()


def bench_dialect(target: Target, runs: int, work: Path, warmup: bool,
                  pymysql: bool = False, gzip_level: int = 1) -> DialectResult:
    org_id, tenant, children, ref_rows = scope_of(target)
    result = DialectResult(target.dialect, server_version_of(target), org_id, len(tenant),
                           len(children), PYMYSQL_TARGET if pymysql else THROUGHPUT_TARGET,
                           gzip_level)
    cmd, env = reference_pipeline(target, tenant, org_id, work, gzip_level)
    rows = sum(ref_rows.values())
    if warmup:  # one untimed pass of each, so no timed run reads a cold cache
        run_reference(cmd, env, rows, work, check=target.dialect)
        run_ours(target, org_id, work, pymysql=pymysql)
    for i in range(runs):  # interleaved, so drift hits both alike
        ours = run_ours(target, org_id, work, pymysql=pymysql)
        result.ours.append(ours)
        ref = run_reference(cmd, env, rows, work)
        result.reference.append(ref)
        print(f"    run {i + 1}/{runs}: ours {ours.seconds:.2f} s ({ours.rows:,} rows), "
              f"reference {ref.seconds:.2f} s ({ref.rows:,} rows)", flush=True)
    return result


# --- reporting -----------------------------------------------------------------------------

def mb(n: float) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def ratio_text(ratio: float, target: float) -> str:
    """Two decimals, or three where two would round a miss up to the target."""
    text = f"{ratio:.2f}x"
    return f"{ratio:.3f}x" if ratio < target and float(text[:-1]) >= target else text


def print_table(res: DialectResult, runs: int) -> None:
    ours, ref = res.median(res.ours), res.median(res.reference)
    target = res.target
    print()
    print(f"{LABELS[res.dialect]} ({res.server}), organization {res.org_id} ({ORG_CODE}), "
          f"median of {runs}")
    header = (f"  {'tool':<56}{'median s':>9}{'rows':>12}{'rows/s':>10}{'output':>11}"
              f"{'peak RSS':>10}")
    print(header)
    print("  " + "-" * (len(header) - 2))
    for name, run in ((f"ours: write_archive (native zip, {res.tenant_tables + res.child_tables}"
                       " tables)", ours),
                      (f"ref: {REFERENCE_NAMES[res.dialect]} -{res.gzip_level} "
                       f"({res.tenant_tables} tables)",
                       ref)):
        print(f"  {name:<56}{run.seconds:>9.2f}{run.rows:>12,}{run.rows / run.seconds:>10,.0f}"
              f"{mb(run.size):>11}{run.rss_kb / 1024:>7.1f} MB")
    if ours.inner_seconds is not None:
        print(f"  (ours: write_archive itself {ours.inner_seconds:.2f} s; the other "
              f"{ours.seconds - ours.inner_seconds:.2f} s are start-up, imports and connecting)")
    print(f"  the reference exports only the {res.tenant_tables} tables with organization_id; "
          f"ours also the {res.child_tables} child-only tables: compare rows/s")
    verdict = "PASS" if res.ratio >= target else "MISS"
    print(f"  throughput ours/reference = {ratio_text(res.ratio, target)} "
          f"(target >= {target:.1f}x): {verdict}")


def summary(results: list[DialectResult]) -> bool:
    print()
    print("Targets")
    ok = True
    for res in results:
        target = res.target
        passed = res.ratio >= target
        ok &= passed
        print(f"  {'PASS' if passed else 'MISS'}  {LABELS[res.dialect]:<14} throughput "
              f"{ratio_text(res.ratio, target)} the reference (target >= {target:.1f}x)")
    for res in results:
        passed = res.ours_rss_mb <= RSS_TARGET_MB
        ok &= passed
        print(f"  {'PASS' if passed else 'MISS'}  {LABELS[res.dialect]:<14} peak RSS "
              f"{res.ours_rss_mb:.1f} MB (target <= {RSS_TARGET_MB:.0f} MB)")
    return ok


def print_profile(path: Path, dialect: str, top: int = 18) -> None:
    import pstats

    print()
    print(f"Profile of one backup on {LABELS[dialect]} (cProfile: main thread only, and "
          "Python-level code looks costlier than it is)")
    stats = pstats.Stats(str(path))
    total = stats.total_tt
    rows = []
    for (filename, line, name), (_cc, nc, tt, ct, _callers) in stats.stats.items():
        rows.append((tt, ct, nc, _short(filename, line, name)))
    rows.sort(reverse=True)
    print(f"  total {total:.2f} s; top {top} by own time:")
    print(f"  {'own s':>7} {'own %':>6} {'cum s':>7} {'calls':>10}  function")
    for tt, ct, nc, label in rows[:top]:
        print(f"  {tt:>7.2f} {100 * tt / total:>5.1f}% {ct:>7.2f} {nc:>10,}  {label}")
    print("  cumulative time of the stages:")
    stages = [("stream_rows", "fetch: driver cursor + row decoding"),
              ("encode_rows", "JSON encoding (json.dumps + encode_value)"),
              ("write_encoded", "zip member write (deflate + sha256, or handing it to a thread)"),
              ("end_table", "end of table (waiting for a writer thread, if any)"),
              ("_count", "COUNT(*) per table"),
              ("_check_written", "re-read check (testzip: inflate + CRC)"),
              ("posix.fsync", "fsync"),
              ("reflect", "schema reflection")]
    for key, what in stages:
        ct = sum(v[3] for k, v in stats.stats.items()
                 if k[2] == key or k[2] == f"<built-in method {key}>")
        print(f"  {ct:>7.2f} {100 * ct / total:>5.1f}%  {what}")


def _short(filename: str, line: int, name: str) -> str:
    if filename == "~":
        return name
    parts = Path(filename).parts
    for anchor in ("site-packages", "desktop_backup", "lib"):
        if anchor in parts:
            i = len(parts) - 1 - parts[::-1].index(anchor)
            return f"{'/'.join(parts[i + 1:] if anchor != 'desktop_backup' else parts[i:])}" \
                   f":{line}({name})"
    return f"{Path(filename).name}:{line}({name})"


# Processes whose CPU time is the bench's own work even though they are not our children.
_SERVERS = ("mariadbd", "mysqld", "postgres")


def cpu_snapshot() -> tuple[float, float, float] | None:
    """CPU seconds so far: the whole machine's busy time, ours (this process and every child
    it waited for), and the database servers' (Linux /proc; None elsewhere)."""
    import resource

    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    values = [int(x) for x in fields]
    busy = (sum(values[:8]) - values[3] - values[4]) / tick  # all but idle and iowait
    ours = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        ours += usage.ru_utime + usage.ru_stime
    servers = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if stat[stat.index("(") + 1:stat.rindex(")")] in _SERVERS:
            servers += sum(int(x) for x in stat[stat.rindex(")") + 2:].split()[11:15]) / tick
    return busy, ours, servers


def competing_share(before: tuple | None, after: tuple | None, seconds: float) -> float | None:
    """The share of all CPUs used by other work (neither ours nor the servers') in between."""
    if before is None or after is None or seconds <= 0:
        return None
    busy, ours, servers = (a - b for a, b in zip(after, before, strict=True))
    return max(0.0, busy - ours - servers) / (seconds * (os.cpu_count() or 1))


def code_revision() -> str:
    """The commit measured, and whether desktop_backup/ had uncommitted changes."""
    root = HERE.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%h %ci"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--",
                                "desktop_backup"], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + (" + uncommitted changes in desktop_backup/" if dirty else "")


# --- entry point ---------------------------------------------------------------------------

def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time our backup of a big organization against mysqldump, psql \\copy and "
                    "the sqlite3 shell on the same rows.")
    parser.add_argument("--dialects", default=",".join(DIALECTS),
                        help="comma-separated: sqlite,mysql,postgres (default: all)")
    add_shape_args(parser)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each (median)")
    parser.add_argument("--rebuild", action="store_true",
                        help="reload the bench databases even when they look complete")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false",
                        help="skip the untimed warm-up pass of each tool")
    parser.add_argument("--profile", action="store_true",
                        help="afterwards, profile one more backup per dialect with cProfile")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                        help=f"where the SQLite bench file lives (default {DEFAULT_CACHE})")
    parser.add_argument("--mysql-url", default=os.environ.get(URL_ENV["mysql"],
                                                              DEFAULT_URLS["mysql"]))
    parser.add_argument("--pg-url", default=os.environ.get(URL_ENV["postgres"],
                                                           DEFAULT_URLS["postgres"]))
    parser.add_argument("--pymysql", action="store_true",
                        help="MariaDB through PyMySQL (what an install without mysqlclient "
                             "gets) instead of mysqlclient")
    parser.add_argument("--gzip-level", type=int, default=1, choices=range(1, 10),
                        metavar="1-9", help="the reference's gzip level (default 1, as issue "
                                            "21's reference; gzip's own default is 6)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    args.dialects = [d.strip() for d in args.dialects.split(",") if d.strip()]
    for d in args.dialects:
        if d not in DIALECTS:
            parser.error(f"unknown dialect {d!r}; use {', '.join(DIALECTS)}")
    settle_scale(parser, args)
    return args


def add_shape_args(parser: argparse.ArgumentParser) -> None:
    """--shape and --scale, shared with restore_bench.py."""
    parser.add_argument("--shape", choices=("demo", "wide"), default="demo",
                        help="demo: the demo's 21 tables; wide: 117 tables of 20-118 columns "
                             "(bench/wide_schema.py)")
    parser.add_argument("--scale", type=float, default=None,
                        help="demo: organization 1 has ~63k rows per unit (default 16, about "
                             "1M rows; 0.5 is a quick smoke run); wide: 1.2M rows per unit "
                             "(default 1)")


def settle_scale(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.scale is None:
        args.scale = 16.0 if args.shape == "demo" else 1.0
    if args.runs < 1 or args.scale <= 0:
        parser.error("--runs and --scale must be positive")


def main(argv: list[str]) -> int:
    if argv[:1] == ["_backup"]:
        backup_child(json.loads(argv[1]))
        return 0
    if argv[:1] == ["_load"]:
        load_child(json.loads(argv[1]))
        return 0
    args = parse_args(argv)
    tools = {"sqlite": ["sqlite3"], "mysql": ["mysqldump"], "postgres": ["psql"]}
    missing = [t for d in args.dialects for t in tools[d] + ["gzip", "bash"]
               if shutil.which(t) is None]
    if missing:
        print(f"missing tools: {', '.join(sorted(set(missing)))}", file=sys.stderr)
        return 2
    print(f"Code measured: {code_revision()}")
    print(f"Machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start")
    others_before, started = cpu_snapshot(), time.monotonic()
    urls = {"mysql": args.mysql_url, "postgres": args.pg_url}
    targets = make_targets(args.dialects, args.scale, args.cache_dir.resolve(), urls, args.shape)
    print(f"Bench databases ({db_name(args.scale, args.shape)}, scale {args.scale:g}):")
    counts = ensure_databases(targets, args.scale, args.cache_dir.resolve(), args.rebuild)
    print(f"  {sum(counts.values()):,} rows in the database in all")
    results = []
    with tempfile.TemporaryDirectory(prefix="backup-bench-") as tmp:
        work = Path(tmp)
        for dialect in args.dialects:
            print(f"Timing {LABELS[dialect]} ...", flush=True)
            results.append(bench_dialect(targets[dialect], args.runs, work, args.warmup,
                                         args.pymysql, args.gzip_level))
        for res in results:
            print_table(res, args.runs)
        ok = summary(results)
        busy = competing_share(others_before, cpu_snapshot(), time.monotonic() - started)
        if busy is not None:
            print(f"  (other processes used {100 * busy:.0f}% of the machine's CPU time while "
                  "this ran" + ("; the timings are noisy: run again on a quiet machine)"
                                if busy > 0.1 else ")"))
        if args.profile:
            for res in results:
                prof = work / f"{res.dialect}.prof"
                run_ours(targets[res.dialect], res.org_id, work, profile=prof,
                         pymysql=args.pymysql)
                print_profile(prof, res.dialect)
    if args.json:
        args.json.write_text(json.dumps({
            "scale": args.scale, "runs": args.runs,
            "results": [{"dialect": r.dialect, "server": r.server, "ratio": r.ratio,
                         "target": r.target, "gzip_level": r.gzip_level,
                         "ours_peak_rss_mb": r.ours_rss_mb,
                         "ours": [asdict(x) for x in r.ours],
                         "reference": [asdict(x) for x in r.reference]} for r in results]},
            indent=1))
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
