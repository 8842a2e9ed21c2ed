"""Benchmark: our restore of one big organization against the databases' own loaders.

    python bench/restore_bench.py [--dialects sqlite,mysql,postgres] [--scale 16] [--runs 3]
                                  [--cases unchanged,deleted] [--profile] [--json FILE]

For each dialect it copies the backup bench's database (``bench_backup_s<scale>``, made or
reused by backup_bench.py) into ``bench_restore_s<scale>``, backs organization 1 (MEDP, about
a million rows at scale 16) up once, and dumps the same rows with the dialect's own tool.
Then, ``--runs`` times each and interleaved, from the same starting state:

* ours: what ``desktop-backup restore --yes`` does, in a fresh Python process:
  ``check_restore`` then ``apply_restore`` (restore point, then the one transaction). The
  transaction (``restore.transaction.run_restore``) is timed on its own too, through
  ``RestoreHooks``;
* the reference loader, deleting the organization's rows and loading the dump:
  MariaDB     ``mysql < (DELETEs + mysqldump output)``, with the dump's own settings
  PostgreSQL  ``psql -1`` with DELETEs and one ``\\copy t FROM STDIN`` per table
  SQLite      the ``sqlite3`` shell with DELETEs and the ``.mode insert`` dump in BEGIN/COMMIT

Two starting states (``--cases``): ``unchanged`` (the database still holds exactly the backup:
the usual restore of a recent backup) and ``deleted`` (the organization's rows were deleted
before the restore: everything is written).

Targets (ratios in the same run on the same rows): the restore's throughput >= 1.0x the
reference loader on every dialect; peak RSS of the whole restore process <= 150 MB.
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
sys.path.insert(0, str(HERE))

import backup_bench as bb  # noqa: E402 - the backup bench's databases and measuring

CASES = ("unchanged", "deleted")
CASE_TEXT = {
    "unchanged": "unchanged since the backup (the reference deletes the rows and loads them)",
    "deleted": "the organization's rows deleted before the restore (everything is written)",
}
THROUGHPUT_TARGET = 1.0
PLAIN_ROLE = "bench_restorer"
REFERENCE_NAMES = {
    "sqlite": "sqlite3 shell: DELETEs + INSERT dump, BEGIN/COMMIT",
    "mysql": "mysql < DELETEs + mysqldump output",
    "postgres": "psql -1: DELETEs + \\copy t FROM STDIN",
}


def restore_db_name(scale: float, shape: str = "demo") -> str:
    return f"bench_restore_{bb.scale_tag(scale, shape)}"


# --- the restore bench's own copy of the database --------------------------------------------

def restore_targets(source: dict[str, bb.Target], scale: float, cache: Path
                    ) -> dict[str, bb.Target]:
    from sqlalchemy.engine import make_url

    out = {}
    for dialect, target in source.items():
        if dialect == "sqlite":
            name = restore_db_name(scale, target.shape)
            out[dialect] = bb.Target(dialect, f"sqlite:///{cache / (name + '.sqlite')}",
                                     shape=target.shape)
        else:
            url = make_url(target.url).set(database=restore_db_name(scale, target.shape))
            out[dialect] = bb.Target(dialect, url.render_as_string(hide_password=False),
                                     target.admin_url, target.shape)
    return out


def ensure_copy(source: bb.Target, copy: bb.Target, counts: dict[str, int]) -> None:
    """Reuse the restore bench's database when its row counts match, else copy the backup
    bench's (which is never changed here)."""
    if bb.actual_counts(copy, sorted(counts)) == counts:
        print(f"  {bb.LABELS[copy.dialect]}: reusing {bb.db_name_of(copy)}")
        return
    started = time.monotonic()
    if copy.dialect == "sqlite":
        partial = copy.sqlite_path.with_name(copy.sqlite_path.name + ".partial")
        shutil.copyfile(source.sqlite_path, partial)
        partial.replace(copy.sqlite_path)
    elif copy.dialect == "postgres":
        _copy_postgres(source, copy)
    else:
        _copy_mysql(source, copy)
    if bb.actual_counts(copy, sorted(counts)) != counts:
        raise RuntimeError(f"the copy {bb.db_name_of(copy)} does not hold the expected rows")
    print(f"  {bb.LABELS[copy.dialect]}: copied {bb.db_name_of(source)} to "
          f"{bb.db_name_of(copy)} in {time.monotonic() - started:.0f} s")


def _copy_postgres(source: bb.Target, copy: bb.Target) -> None:
    from sqlalchemy import create_engine

    admin = create_engine(copy.admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {bb.db_name_of(copy)} WITH (FORCE)")
            for attempt in range(30):  # a template must have no other sessions
                try:
                    conn.exec_driver_sql(f"CREATE DATABASE {bb.db_name_of(copy)} TEMPLATE "
                                         f"{bb.db_name_of(source)}")
                    break
                except Exception:  # noqa: BLE001 - the backup bench is reading it: wait
                    if attempt == 29:
                        raise
                    time.sleep(2)
    finally:
        admin.dispose()


def _copy_mysql(source: bb.Target, copy: bb.Target) -> None:
    from sqlalchemy import create_engine

    name, src = bb.db_name_of(copy), bb.db_name_of(source)
    admin = create_engine(copy.admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            conn.exec_driver_sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 "
                                 "COLLATE utf8mb4_unicode_ci")
    finally:
        admin.dispose()
    engine = create_engine(copy.url)
    metadata = bb.schema_of(source.shape)
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
            for table in metadata.sorted_tables:
                conn.exec_driver_sql(f"INSERT INTO {name}.{table.name} SELECT * FROM "
                                     f"{src}.{table.name}")
    finally:
        engine.dispose()


# --- the organization, its rows, and the reference's files ------------------------------------

@dataclass
class Scope:
    """Organization 1 of the bench database: its tables parents first, and the WHERE clause
    that picks its rows in each (the restore's own)."""

    org_id: int
    tables: list[str]
    where: dict[str, str]
    columns: dict[str, list[str]]


def scope_of(target: bb.Target) -> Scope:
    from sqlalchemy import create_engine

    from desktop_backup.config import SchemaMapping
    from desktop_backup.db import reflect
    from desktop_backup.restore.check import restore_order
    from desktop_backup.tenancy import discover_scope

    engine = create_engine(target.url)
    try:
        with engine.connect() as conn:
            org_id = int(conn.exec_driver_sql(
                f"SELECT id FROM organizations WHERE code = '{bb.ORG_CODE}'").scalar_one())
            metadata = reflect(conn)
            scope = discover_scope(metadata, SchemaMapping())
            order = restore_order(metadata, scope.names())
            where = {}
            for ts in scope.tables:
                predicate = scope.predicate(ts, org_id)
                where[ts.name] = str(predicate.compile(
                    dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            columns = {n: [c.name for c in metadata.tables[n].columns] for n in order}
    finally:
        engine.dispose()
    return Scope(org_id, order, where, columns)


def delete_statements(scope: Scope) -> list[str]:
    """The organization's rows, children first."""
    return [f"DELETE FROM {t} WHERE {scope.where[t]};" for t in reversed(scope.tables)]


def delete_rows(target: bb.Target, scope: Scope) -> None:
    """(Untimed) the 'deleted' starting state: the organization's rows gone, quickly (foreign
    key checks off, so deleting a parent does not scan unindexed child columns)."""
    from sqlalchemy import create_engine

    engine = create_engine(target.url)
    try:
        with engine.begin() as conn:
            if target.dialect == "mysql":
                conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
            elif target.dialect == "postgres":
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            for statement in delete_statements(scope):
                conn.exec_driver_sql(statement.rstrip(";"))
    finally:
        engine.dispose()


def settle(target: bb.Target, patience: float = 120.0) -> None:
    """(Untimed) before each timed run, the server done with what the last one left behind:
    PostgreSQL's dead rows vacuumed and statistics fresh; InnoDB's purge of the rows deleted
    before (it runs on the server's own threads, and would otherwise take CPU from whichever
    side is timed next)."""
    if target.dialect == "sqlite":
        return
    from sqlalchemy import create_engine

    engine = create_engine(target.url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if target.dialect == "postgres":
                conn.exec_driver_sql("VACUUM ANALYZE")
                return
            deadline = time.monotonic() + patience
            while time.monotonic() < deadline:
                row = conn.exec_driver_sql(
                    "SHOW GLOBAL STATUS LIKE 'Innodb_history_list_length'").first()
                if row is None or int(row[1]) == 0:
                    return  # a MySQL without this figure, or the purge is done (a big
                    # DELETE is one entry in the history list, purged some seconds later)
                time.sleep(0.5)
    finally:
        engine.dispose()


def org_counts(target: bb.Target, scope: Scope) -> dict[str, int]:
    from sqlalchemy import create_engine

    engine = create_engine(target.url)
    try:
        with engine.connect() as conn:
            return {t: int(conn.exec_driver_sql(
                f"SELECT COUNT(*) FROM {t} WHERE {scope.where[t]}").scalar()) for t in scope.tables}
    finally:
        engine.dispose()


def make_archive(target: bb.Target, scope: Scope, work: Path) -> tuple[Path, dict[str, int]]:
    """(Untimed) our backup of the organization: what every run restores."""
    from sqlalchemy.engine import make_url

    from desktop_backup.backup import write_archive
    from desktop_backup.config import SchemaMapping
    from desktop_backup.db import open_engine
    from desktop_backup.work import Actor, Site

    url = make_url(target.url)
    engine = open_engine(url.set(drivername="mysql") if url.get_backend_name() == "mysql"
                         else url)
    path = work / f"{target.dialect}_MEDP.zip"
    try:
        manifest = write_archive(Site(engine, SchemaMapping()), scope.org_id, path,
                                 Actor(0, "bench"), trigger="cli")
    finally:
        engine.dispose()
    return path, {t.name: t.rows for t in manifest.tables}


def reference_script(target: bb.Target, scope: Scope, work: Path) -> tuple[list[str], dict]:
    """(Untimed) dump the organization's rows with the dialect's own tool and write the load
    script: the DELETEs (children first), then the dump. Returns the timed command."""
    from sqlalchemy.engine import make_url

    env = dict(os.environ)
    url = make_url(target.url)
    script = work / f"{target.dialect}_reference.sql"
    deletes = "\n".join(delete_statements(scope)) + "\n"
    if target.dialect == "sqlite":
        db = shlex.quote(str(target.sqlite_path))
        dump = work / "sqlite_dump.sql"
        lines = []
        for t in scope.tables:
            lines += [f".mode insert {t}", f"SELECT * FROM {t} WHERE {scope.where[t]};"]
        (work / "sqlite_dump_cmds").write_text("\n".join(lines) + "\n")
        with open(dump, "wb") as out:
            subprocess.run(["sqlite3", "-batch", "-readonly", str(target.sqlite_path)],
                           stdin=open(work / "sqlite_dump_cmds", "rb"), stdout=out, check=True)
        with open(script, "wb") as out:
            out.write(b".bail on\nBEGIN;\n" + deletes.encode())
            with open(dump, "rb") as f:
                shutil.copyfileobj(f, out)
            out.write(b"COMMIT;\n")
        dump.unlink()
        command = f"sqlite3 -batch {db} < {shlex.quote(str(script))}"
    elif target.dialect == "mysql":
        if url.password:
            env["MYSQL_PWD"] = str(url.password)
        login = (f"-h {shlex.quote(url.host or '127.0.0.1')} -P {url.port or 3306} "
                 f"-u {shlex.quote(url.username or 'root')}")
        by_where: dict[str, list[str]] = {}
        for t in scope.tables:
            by_where.setdefault(scope.where[t], []).append(t)
        with open(script, "wb") as out:
            out.write(deletes.encode())
            for where, tables in by_where.items():
                out.flush()
                subprocess.run(
                    f"mysqldump --single-transaction --no-create-info --skip-triggers "
                    f"--where={shlex.quote(where)} {login} {shlex.quote(url.database)} "
                    f"{' '.join(tables)}", shell=True, stdout=out, env=env, check=True)
        command = f"mysql {login} {shlex.quote(url.database)} < {shlex.quote(str(script))}"
    else:
        if url.password:
            env["PGPASSWORD"] = str(url.password)
        login = (f"-h {shlex.quote(url.host or '127.0.0.1')} -p {url.port or 5432} "
                 f"-U {shlex.quote(url.username or 'postgres')} -d {shlex.quote(url.database)}")
        with open(script, "wb") as out:
            # Deleting a parent row makes PostgreSQL scan the unindexed child columns once per
            # row (hours at this size), so the reference deletes with its triggers off, as
            # pg_restore --disable-triggers would; the load below checks every foreign key.
            out.write(b"SET session_replication_role = replica;\n" + deletes.encode()
                      + b"RESET session_replication_role;\n")
            for t in scope.tables:
                cols = ", ".join(scope.columns[t])
                out.write(f"\\copy {t} ({cols}) FROM STDIN\n".encode())
                out.flush()
                query = f"COPY (SELECT {cols} FROM {t} WHERE {scope.where[t]}) TO STDOUT"
                subprocess.run(f"psql -X -q -v ON_ERROR_STOP=1 {login} -c {shlex.quote(query)}",
                               shell=True, stdout=out, env=env, check=True)
                out.write(b"\\.\n")
        command = (f"psql -X -q -1 -v ON_ERROR_STOP=1 {login} -f {shlex.quote(str(script))}"
                   " > /dev/null")
    return ["bash", "-o", "pipefail", "-c", command], env


# --- timing ----------------------------------------------------------------------------------

@dataclass
class Run:
    seconds: float  # the whole process: start-up, check, restore point, transaction
    rss_kb: int
    transaction: float | None = None  # ours: restore.transaction.run_restore
    check: float | None = None
    restore_point: float | None = None
    written: dict = field(default_factory=dict)


def run_ours(target: bb.Target, scope: Scope, archive: Path, work: Path,
             profile: Path | None = None, url: str | None = None) -> Run:
    folder = Path(tempfile.mkdtemp(prefix="ours-", dir=work))
    args = {"url": url or target.url, "org_id": scope.org_id, "archive": str(archive),
            "folder": str(folder), "profile": str(profile) if profile else None}
    cmd = [sys.executable, str(Path(__file__).resolve()), "_restore", json.dumps(args)]
    seconds, rss = bb.timed(cmd, work / "ours.out", work / "ours.err")
    result = json.loads((work / "ours.out").read_text())
    shutil.rmtree(folder, ignore_errors=True)
    return Run(seconds, rss, result["transaction"], result["check"], result["restore_point"],
               result["written"])


def restore_child(args: dict) -> None:
    """(Child process) one restore, as ``desktop-backup restore --yes`` makes it."""
    from sqlalchemy.engine import make_url

    from desktop_backup.config import SchemaMapping
    from desktop_backup.db import open_engine
    from desktop_backup.organizations import find_organization
    from desktop_backup.restore import RestoreHooks, apply_restore, check_restore
    from desktop_backup.work import Actor, Site

    url = make_url(args["url"])
    if url.get_backend_name() == "mysql":
        url = url.set(drivername="mysql")  # the fastest installed driver, as a shop's would
    engine = open_engine(url)
    mapping = SchemaMapping()
    with engine.connect() as conn:
        org = find_organization(conn, mapping, args["org_id"])
    seen: dict = {}

    class Timed(RestoreHooks):
        """The transaction on its own: from opening the archive to COMMIT."""

        def started(self) -> None:
            seen["transaction"] = -time.perf_counter()

        def committed(self) -> None:
            seen["transaction"] += time.perf_counter()

    # Support staff restoring a lost organization: a super admin (an actor with no role may
    # not put back the owner's user row; restore.privileges).
    actor = Actor(1, "superadmin", "super_admin")

    def restore():
        started = time.perf_counter()
        plan = check_restore(Site(engine, mapping), org, Path(args["archive"]), restorer=actor)
        if not plan.ok:
            raise SystemExit(plan.message)
        seen["check"] = time.perf_counter() - started
        started = time.perf_counter()
        seen["applied"] = apply_restore(Site(engine, mapping), org, plan, actor,
                                        Path(args["folder"]), restore_points_kept=1,
                                        trigger="cli", hooks=Timed())
        seen["apply"] = time.perf_counter() - started

    if args.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.runcall(restore)
        profiler.dump_stats(args["profile"])
    else:
        restore()
    applied = seen["applied"]
    # A backup identical to the live rows needs no transaction (nor restore point): 0 s.
    transaction = seen.get("transaction", 0.0)
    print(json.dumps({
        "check": seen["check"], "transaction": transaction,
        "restore_point": seen["apply"] - transaction,
        "written": {"inserted": applied.inserted, "updated": applied.updated,
                    "unchanged": applied.unchanged, "deleted": applied.deleted}}))


def run_reference(cmd: list[str], env: dict, work: Path) -> Run:
    seconds, rss = bb.timed(cmd, work / "reference.out", work / "reference.err", env)
    return Run(seconds, rss)


@dataclass
class CaseResult:
    case: str
    ours: list[Run] = field(default_factory=list)
    reference: list[Run] = field(default_factory=list)

    def median(self, which: str, attr: str = "seconds") -> float:
        return statistics.median(getattr(r, attr) for r in getattr(self, which))

    def ratio(self, attr: str) -> float:
        """Our throughput over the reference's: the same rows, so the inverse time ratio."""
        ours = self.median("ours", attr)
        return self.median("reference") / ours if ours > 0 else float("inf")


@dataclass
class DialectResult:
    dialect: str
    server: str
    org_id: int
    rows: int
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def ours_rss_mb(self) -> float:
        return max(r.rss_kb for c in self.cases for r in c.ours) / 1024


def plain_role_url(target: bb.Target) -> str:
    """(PostgreSQL) a role that is no superuser, allowed to read and write the bench tables:
    a shop's usual database user, for which the restore keeps the server's foreign key
    triggers (it may not switch to replica mode)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    engine = create_engine(target.url)
    try:
        with engine.begin() as conn:
            if not conn.exec_driver_sql(
                    f"SELECT 1 FROM pg_roles WHERE rolname = '{PLAIN_ROLE}'").first():
                conn.exec_driver_sql(f"CREATE ROLE {PLAIN_ROLE} LOGIN NOSUPERUSER")
            conn.exec_driver_sql(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN "
                                 f"SCHEMA public TO {PLAIN_ROLE}")
            conn.exec_driver_sql(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA "
                                 f"public TO {PLAIN_ROLE}")
            conn.exec_driver_sql(f"GRANT CREATE ON SCHEMA public TO {PLAIN_ROLE}")
    finally:
        engine.dispose()
    return make_url(target.url).set(username=PLAIN_ROLE).render_as_string(hide_password=False)


def bench_dialect(target: bb.Target, cases: list[str], runs: int, work: Path,
                  warmup: bool, plain_role: bool = False) -> DialectResult:
    scope = scope_of(target)
    archive, archive_counts = make_archive(target, scope, work)
    ours_url = plain_role_url(target) if plain_role else None  # after the backup's tables
    if ours_url:
        print(f"  (our restore runs as {PLAIN_ROLE}, no superuser)", flush=True)
    backed_up = {t: archive_counts[t] for t in scope.tables}
    if org_counts(target, scope) != backed_up:
        raise RuntimeError("the bench database does not hold what was just backed up")
    cmd, env = reference_script(target, scope, work)
    result = DialectResult(target.dialect, bb.server_version_of(target), scope.org_id,
                           sum(archive_counts.values()))

    def check(what: str) -> None:  # untimed: the restore or the load put back every row
        found = org_counts(target, scope)
        if found != backed_up:
            wrong = {t: (found[t], backed_up[t]) for t in found if found[t] != backed_up[t]}
            raise RuntimeError(f"after {what} the organization's rows differ: {wrong}")

    if warmup:  # one untimed pass of each, so no timed run reads a cold cache
        run_ours(target, scope, archive, work, url=ours_url)
        check("our warm-up restore")
        run_reference(cmd, env, work)
        check("the reference's warm-up load")
    for case in cases:
        res = CaseResult(case)
        result.cases.append(res)
        for i in range(runs):  # interleaved, so drift hits both alike
            for who in ("ours", "reference"):
                if case == "deleted":
                    delete_rows(target, scope)
                settle(target)
                if who == "ours":
                    run = run_ours(target, scope, archive, work, url=ours_url)
                    res.ours.append(run)
                else:
                    run = run_reference(cmd, env, work)
                    res.reference.append(run)
                check(f"{who} ({case})")
            ours, ref = res.ours[-1], res.reference[-1]
            print(f"    {case} run {i + 1}/{runs}: ours {ours.seconds:.2f} s (transaction "
                  f"{ours.transaction:.2f} s), reference {ref.seconds:.2f} s", flush=True)
    return result


# --- reporting ------------------------------------------------------------------------------

def print_table(res: DialectResult, runs: int) -> None:
    print()
    print(f"{bb.LABELS[res.dialect]} ({res.server}), organization {res.org_id} ({bb.ORG_CODE}), "
          f"{res.rows:,} rows, median of {runs}")
    for case in res.cases:
        print(f"  {case.case}: {CASE_TEXT[case.case]}")
        header = f"    {'':<54}{'median s':>9}{'rows/s':>11}{'vs ref':>8}{'peak RSS':>10}"
        print(header)
        print("    " + "-" * (len(header) - 4))
        ours_rss = max(r.rss_kb for r in case.ours) / 1024
        ref_rss = max(r.rss_kb for r in case.reference) / 1024
        lines = [
            ("ours: the transaction (restore.transaction.run_restore)",
             case.median("ours", "transaction"), case.ratio("transaction"), None),
            ("ours: whole restore (start-up, check, restore point, tx)",
             case.median("ours"), case.ratio("seconds"), ours_rss),
            (f"ref: {REFERENCE_NAMES[res.dialect]}", case.median("reference"), 1.0, ref_rss),
        ]
        for name, seconds, ratio, rss in lines:
            rss_text = f"{rss:>7.1f} MB" if rss is not None else f"{'':>10}"
            if seconds == 0:  # nothing to write: no transaction ran
                print(f"    {name:<54}{'none':>9}{'':>11}{'':>8}{rss_text}")
                continue
            print(f"    {name:<54}{seconds:>9.2f}{res.rows / seconds:>11,.0f}"
                  f"{ratio:>7.2f}x{rss_text}")
        check = statistics.median(r.check for r in case.ours)
        point = statistics.median(r.restore_point for r in case.ours)
        written = case.ours[-1].written
        print(f"    (ours: check {check:.2f} s, restore point {point:.2f} s; the transaction "
              f"inserted {written['inserted']:,}, updated {written['updated']:,}, left "
              f"{written['unchanged']:,} unchanged, deleted {written['deleted']:,})")


def summary(results: list[DialectResult]) -> bool:
    print()
    print("Targets (issue 21: throughput of the whole restore command, check, restore point "
          "and transaction, against the reference loader from the same starting state; RSS: "
          "the whole restore process)")
    ok = True
    for res in results:
        for case in res.cases:
            ratio = case.ratio("seconds")
            passed = ratio >= THROUGHPUT_TARGET
            ok &= passed
            tx = case.ratio("transaction")
            print(f"  {'PASS' if passed else 'MISS'}  {bb.LABELS[res.dialect]:<14} {case.case:<10}"
                  f" throughput {bb.ratio_text(ratio, THROUGHPUT_TARGET)} the reference (target "
                  f">= {THROUGHPUT_TARGET:.1f}x; the transaction alone: "
                  + ("none ran)" if tx == float("inf") else f"{tx:.2f}x)"))
    for res in results:
        passed = res.ours_rss_mb <= bb.RSS_TARGET_MB
        ok &= passed
        print(f"  {'PASS' if passed else 'MISS'}  {bb.LABELS[res.dialect]:<14} peak RSS "
              f"{res.ours_rss_mb:.1f} MB (target <= {bb.RSS_TARGET_MB:.0f} MB)")
    return ok


def print_profile(path: Path, dialect: str, case: str, top: int = 20) -> None:
    import pstats

    print()
    print(f"Profile of one restore on {bb.LABELS[dialect]}, case {case} (cProfile: main thread "
          "only, and Python-level code looks costlier than it is)")
    stats = pstats.Stats(str(path))
    total = stats.total_tt
    rows = sorted(((tt, ct, nc, bb._short(f, line, name))  # noqa: SLF001 - shared helper
                   for (f, line, name), (_cc, nc, tt, ct, _callers) in stats.stats.items()),
                  reverse=True)
    print(f"  total {total:.2f} s; top {top} by own time:")
    print(f"  {'own s':>7} {'own %':>6} {'cum s':>7} {'calls':>10}  function")
    for tt, ct, nc, label in rows[:top]:
        print(f"  {tt:>7.2f} {100 * tt / total:>5.1f}% {ct:>7.2f} {nc:>10,}  {label}")
    print("  cumulative time of the stages:")
    stages = [("check_restore", "check (reads every row, nothing changes)"),
              ("_take_restore_point", "restore point (a backup of the current rows)"),
              ("run_restore", "the transaction"),
              ("compare_keys", "  keys now vs the backup's (check preview and transaction)"),
              ("decode_columns", "  archive values converted (both passes)"),
              ("parse_batch", "  JSON parsing (both passes)"),
              ("_live", "  reading the live rows to compare"),
              ("write", "  comparing and writing batches")]
    for key, what in stages:
        # The package's functions only: the bench's own timing wrapper is a run_restore too.
        ct = sum(v[3] for k, v in stats.stats.items()
                 if k[2] == key and "desktop_backup" in k[0])
        print(f"  {ct:>7.2f} {100 * ct / total:>5.1f}%  {what}")


# --- entry point ---------------------------------------------------------------------------

def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time our restore of a big organization against the mysql client, psql "
                    "\\copy and the sqlite3 shell loading the same rows.")
    parser.add_argument("--dialects", default=",".join(bb.DIALECTS),
                        help="comma-separated: sqlite,mysql,postgres (default: all)")
    bb.add_shape_args(parser)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each (median)")
    parser.add_argument("--cases", default=",".join(CASES),
                        help="starting states: unchanged,deleted (default: both)")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false",
                        help="skip the untimed warm-up pass of each tool")
    parser.add_argument("--profile", action="store_true",
                        help="afterwards, profile one more restore per dialect and case")
    parser.add_argument("--cache-dir", type=Path, default=bb.DEFAULT_CACHE,
                        help=f"where the SQLite bench files live (default {bb.DEFAULT_CACHE})")
    parser.add_argument("--mysql-url", default=os.environ.get(bb.URL_ENV["mysql"],
                                                              bb.DEFAULT_URLS["mysql"]))
    parser.add_argument("--pg-url", default=os.environ.get(bb.URL_ENV["postgres"],
                                                           bb.DEFAULT_URLS["postgres"]))
    parser.add_argument("--pg-plain-role", action="store_true",
                        help=f"restore on PostgreSQL as a role that is no superuser "
                             f"({PLAIN_ROLE}, made here): the server checks foreign keys")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    args.dialects = [d.strip() for d in args.dialects.split(",") if d.strip()]
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    for d in args.dialects:
        if d not in bb.DIALECTS:
            parser.error(f"unknown dialect {d!r}; use {', '.join(bb.DIALECTS)}")
    for c in args.cases:
        if c not in CASES:
            parser.error(f"unknown case {c!r}; use {', '.join(CASES)}")
    bb.settle_scale(parser, args)
    return args


def main(argv: list[str]) -> int:
    if argv[:1] == ["_restore"]:
        restore_child(json.loads(argv[1]))
        return 0
    args = parse_args(argv)
    tools = {"sqlite": ["sqlite3"], "mysql": ["mysql", "mysqldump"], "postgres": ["psql"]}
    missing = [t for d in args.dialects for t in tools[d] + ["bash"] if shutil.which(t) is None]
    if missing:
        print(f"missing tools: {', '.join(sorted(set(missing)))}", file=sys.stderr)
        return 2
    print(f"Code measured: {bb.code_revision()}")
    print(f"Machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start")
    others_before, started = bb.cpu_snapshot(), time.monotonic()
    urls = {"mysql": args.mysql_url, "postgres": args.pg_url}
    cache = args.cache_dir.resolve()
    source = bb.make_targets(args.dialects, args.scale, cache, urls, args.shape)
    print(f"Bench databases ({restore_db_name(args.scale, args.shape)}, copies of "
          f"{bb.db_name(args.scale, args.shape)}):")
    counts = bb.ensure_databases(source, args.scale, cache, rebuild=False)
    targets = restore_targets(source, args.scale, cache)
    for dialect in args.dialects:
        ensure_copy(source[dialect], targets[dialect], counts)
    results = []
    with tempfile.TemporaryDirectory(prefix="restore-bench-") as tmp:
        work = Path(tmp)
        for dialect in args.dialects:
            print(f"Timing {bb.LABELS[dialect]} ...", flush=True)
            results.append(bench_dialect(targets[dialect], args.cases, args.runs, work,
                                         args.warmup,
                                         dialect == "postgres" and args.pg_plain_role))
        for res in results:
            print_table(res, args.runs)
        ok = summary(results)
        busy = bb.competing_share(others_before, bb.cpu_snapshot(), time.monotonic() - started)
        if busy is not None:
            print(f"  (other processes used {100 * busy:.0f}% of the machine's CPU time while "
                  "this ran" + ("; the timings are noisy: run again on a quiet machine)"
                                if busy > 0.1 else ")"))
        if args.profile:
            for res in results:
                target = targets[res.dialect]
                scope = scope_of(target)
                archive = work / f"{res.dialect}_MEDP.zip"
                for case in args.cases:
                    if case == "deleted":
                        delete_rows(target, scope)
                    settle(target)
                    prof = work / f"{res.dialect}-{case}.prof"
                    run_ours(target, scope, archive, work, profile=prof)
                    print_profile(prof, res.dialect, case)
    if args.json:
        args.json.write_text(json.dumps({
            "scale": args.scale, "runs": args.runs,
            "results": [{"dialect": r.dialect, "server": r.server, "rows": r.rows,
                         "ours_peak_rss_mb": r.ours_rss_mb,
                         "cases": [{"case": c.case,
                                    "ratio_transaction": c.ratio("transaction"),
                                    "ratio_whole": c.ratio("seconds"),
                                    "ours": [asdict(x) for x in c.ours],
                                    "reference": [asdict(x) for x in c.reference]}
                                   for c in r.cases]} for r in results]}, indent=1))
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
