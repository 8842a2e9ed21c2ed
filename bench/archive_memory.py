"""Benchmark: peak memory of verify and restore on the archive forms that once blew it up.

    python bench/archive_memory.py [--json-mb 750] [--line-mb 15] [--scale 0.05] [--keep DIR]

Issue 14 found a 52 MB web-app backup (749 MB of JSON) driving verify and restore to 4 GB,
one 200 MB line in a native archive to 850 MB, and an archive written one row per line
checking 39x slower. This builds those forms from a real backup of the demo's organization
MEDP (SQLite, made in a temporary folder) and measures, each in a fresh process:

* ``verify`` and ``restore`` (``desktop-backup restore --yes``: the check, the restore point
  and the transaction) of a web-app backup whose ``customer_ledgers`` holds enough copies of
  its rows (new ids, same references) to make ``--json-mb`` of JSON;
* ``verify`` and ``restore`` of a native archive whose ``customer_ledgers`` is one line of
  ``--line-mb`` (just under the 16 MB a line may have), read row by row;
* ``verify`` of a native archive with one 200 MB line (refused: longer than any batch);
* ``verify`` of the ``--line-mb`` archive rewritten one row per line, against the same rows in
  the writer's lines (the check must be linear in bytes, not in lines).

Peak RSS is ``ru_maxrss`` of the measured process (started through backup_bench's launcher,
so it does not inherit this process's high-water mark). Target: <= 150 MB everywhere.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import backup_bench as bb  # noqa: E402 - the RSS launcher

from desktop_backup.archive import MANIFEST  # noqa: E402
from desktop_backup.seedformat import APP_DATABASE_MEMBER, php_json  # noqa: E402

TABLE = "customer_ledgers"
TARGET_MB = 150
PASSWORD = "bench-pass"


def measure(cmd: list[str], work: Path, env: dict) -> tuple[float, float, int, str]:
    """Seconds, peak RSS (MB), exit status and the last line of output of one command."""
    report = work / "rusage.json"
    done = subprocess.run([sys.executable, "-I", "-S", "-c", bb._LAUNCHER, str(report), *cmd],
                          capture_output=True, text=True, env=env)
    result = json.loads(report.read_text())
    lines = (done.stdout + done.stderr).replace("\r", "\n").strip().splitlines()
    verdicts = [line for line in lines if "progress" not in line and "rows done" not in line]
    return result["seconds"], result["rss_kb"] / 1024, result["code"], (verdicts or [""])[-1]


def make_database(work: Path, scale: float) -> str:
    """The demo database at `scale`, with medp.admin's password known to the bench."""
    import bcrypt
    from sqlalchemy import create_engine, text

    from desktop_backup.demo import load_demo

    url = f"sqlite:///{work / 'billing.sqlite'}"
    engine = create_engine(url)
    load_demo(engine, scale=scale)
    cheap = "$2y$" + bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()[4:]
    with engine.begin() as conn:
        conn.execute(text("UPDATE users SET password = :p WHERE username = 'medp.admin'"),
                     {"p": cheap})
    engine.dispose()
    return url


def backups(url: str, work: Path) -> tuple[Path, Path]:
    """MEDP's native and web-app backups of the bench database."""
    from desktop_backup.backup import run_backup
    from desktop_backup.config import SchemaMapping
    from desktop_backup.db import open_engine
    from desktop_backup.organizations import find_organization
    from desktop_backup.work import Actor, Site

    engine = open_engine(url)
    with engine.connect() as conn:
        org = find_organization(conn, SchemaMapping(), "MEDP")
    made = []
    for fmt in ("native", "seed"):
        result = run_backup(Site(engine, SchemaMapping()), org, Actor(3, "medp.admin"),
                            work / "made", trigger="manual", fmt=fmt, force=True)
        made.append(result.path.rename(work / f"template-{fmt}{result.path.suffix}"))
    engine.dispose()
    return made[0], made[1]


def copies(rows: list[dict], first_id: int):
    """Endless copies of a table's rows with new ids (every reference left as it was)."""
    n = 0
    while True:
        for row in rows:
            yield {**row, "id": first_id + n}
            n += 1


def big_seed(template: Path, target: Path, json_mb: float) -> tuple[int, float]:
    """The web-app backup with TABLE grown to make `json_mb` of JSON, written as a stream."""
    with zipfile.ZipFile(template) as zf:
        data = json.loads(zf.read(zf.namelist()[0]))
    rows = data["tables"][TABLE]["data"]
    others = {k: v for k, v in data["tables"].items() if k != TABLE}
    one = len(php_json(rows[0])) + 2
    count = int(json_mb * 1024 * 1024 / one)
    start = max(r["id"] for r in rows) + 1_000_000
    written = 0
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf, \
            zf.open(APP_DATABASE_MEMBER, "w", force_zip64=True) as out:
        out.write(('{\n    "metadata": ' + php_json(data["metadata"]) + ',\n    "tables": {\n'
                   ).encode())
        for name, table in others.items():
            out.write(f'        {php_json(name)}: {php_json(table)},\n'.encode())
        out.write(f'        "{TABLE}": {{\n            "count": {count},\n'
                  '            "data": [\n'.encode())
        source = copies(rows, start)
        for i in range(count):
            text = php_json(next(source))
            out.write(((",\n" if i else "") + text).encode())
            written += len(text) + 2
        out.write(('\n]\n        }\n    },\n    "organization": '
                   + php_json(data["organization"]) + "\n}\n").encode())
    return count, written / 1024 / 1024


def rewrite_native(template: Path, target: Path, line_mb: float, *, one_line: bool = True,
                   per_row: bool = False) -> int:
    """The native backup with TABLE grown to `line_mb` of rows: one line, the writer's
    lines (per_row False, one_line False), or one row per line; counts and checksums
    recomputed."""
    from desktop_backup.archive import encode_rows

    with zipfile.ZipFile(template) as zin:
        manifest = json.loads(zin.read(MANIFEST))
        entry = next(t for t in manifest["tables"] if t["name"] == TABLE)
        names = [c["name"] for c in entry["columns"]]
        rows = [dict(zip(names, r, strict=True))
                for line in zin.read(entry["member"]).splitlines() for r in json.loads(line)]
        one = len(json.dumps([rows[0][n] for n in names], separators=(",", ":"))) + 1
        count = int(line_mb * 1024 * 1024 / one)
        source = copies(rows, max(r["id"] for r in rows) + 1_000_000)
        grown = [[row[n] for n in names] for row in (next(source) for _ in range(count))]
        if per_row:
            data = b"".join(json.dumps([r], separators=(",", ":")).encode() + b"\n"
                            for r in grown)
        elif one_line:
            data = json.dumps(grown, separators=(",", ":")).encode() + b"\n"
        else:
            data = b"".join(encode_rows(grown[i:i + 5000]) for i in range(0, count, 5000))
        del grown
        entry.update(rows=count, sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
        manifest["totals"]["rows"] = sum(t["rows"] for t in manifest["tables"])
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zout:
            for info in zin.infolist():
                if info.filename == MANIFEST:
                    zout.writestr(MANIFEST, json.dumps(manifest, indent=2))
                elif info.filename == entry["member"]:
                    zout.writestr(info.filename, data)
                else:
                    zout.writestr(info.filename, zin.read(info.filename))
    return count


def giant_line(template: Path, target: Path, mb: int = 200) -> None:
    """One table member that is a single `mb` MB line (checksums made to agree)."""
    with zipfile.ZipFile(template) as zin:
        manifest = json.loads(zin.read(MANIFEST))
        entry = next(t for t in manifest["tables"] if t["name"] == TABLE)
        # random text: a line of one letter would be refused as a zip bomb before it is read
        data = b'[["' + base64.b64encode(os.urandom(mb * 1024 * 1024 * 3 // 4)) + b'"]]\n'
        entry.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zout:
            for info in zin.infolist():
                if info.filename == MANIFEST:
                    zout.writestr(MANIFEST, json.dumps(manifest, indent=2))
                else:
                    zout.writestr(info.filename, data if info.filename == entry["member"]
                                  else zin.read(info.filename))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json-mb", type=float, default=750,
                        help="JSON in the large web-app backup (issue 14: 749)")
    parser.add_argument("--line-mb", type=float, default=15,
                        help="the long line of the native archive (a line may have 16 MB)")
    parser.add_argument("--scale", type=float, default=0.05, help="demo scale of the database")
    parser.add_argument("--keep", help="build in this folder and keep it (default: a temp one)")
    args = parser.parse_args(argv)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="archive-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    cli = shutil.which("desktop-backup", path=str(Path(sys.executable).parent))
    env = {**os.environ, "DESKTOP_BACKUP_PASSWORD": PASSWORD,
           "DESKTOP_BACKUP_HOME": str(work / "home")}
    try:
        url = make_database(work, args.scale)
        native, seed = backups(url, work)
        pristine = work / "pristine.sqlite"
        shutil.copyfile(work / "billing.sqlite", pristine)
        rows, json_mb = big_seed(seed, work / "org_MEDP_monday_full_backup.zip", args.json_mb)
        long_rows = rewrite_native(native, work / "long-line.zip", args.line_mb)
        rewrite_native(native, work / "writer-lines.zip", args.line_mb, one_line=False)
        rewrite_native(native, work / "row-per-line.zip", args.line_mb, per_row=True)
        giant_line(native, work / "giant-line.zip")
        cases = [
            (f"web app, {json_mb:.0f} MB JSON ({rows:,} rows)",
             work / "org_MEDP_monday_full_backup.zip", True),
            (f"native, one {args.line_mb:g} MB line ({long_rows:,} rows)",
             work / "long-line.zip", True),
            ("native, one 200 MB line (refused)", work / "giant-line.zip", False),
            (f"native, the writer's lines ({long_rows:,} rows)", work / "writer-lines.zip",
             True),
            (f"native, one row per line ({long_rows:,} rows)", work / "row-per-line.zip",
             True),
        ]
        print(f"{'archive':<48} {'size MB':>8} {'operation':>9} {'seconds':>8} "
              f"{'peak MB':>8}  outcome")
        worst = 0.0
        for label, path, restore in cases:
            operations = [("verify", [cli, "verify", str(path)])]
            if restore:
                operations.append(("restore", [cli, "restore", str(path), "--db", url,
                                               "--org", "MEDP", "--user", "medp.admin",
                                               "--dir", str(work / "backups"), "--yes"]))
            for name, cmd in operations:
                shutil.copyfile(pristine, work / "billing.sqlite")
                seconds, peak, code, last = measure(cmd, work, env)
                worst = max(worst, peak)
                size = path.stat().st_size / 1024 / 1024
                print(f"{label:<48} {size:>8.1f} {name:>9} {seconds:>8.1f} {peak:>8.0f}  "
                      f"exit {code}: {last[:90]}", flush=True)
        print(f"largest peak RSS: {worst:.0f} MB (target <= {TARGET_MB} MB): "
              f"{'met' if worst <= TARGET_MB else 'MISSED'}")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
