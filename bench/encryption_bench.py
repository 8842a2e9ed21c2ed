"""Benchmark: an encrypted backup (age, streamed) against a plain one, same rows, same run.

    python bench/encryption_bench.py [--scale 4] [--runs 5] [--json FILE] [--strict]

Organization 1 (MEDP) of a SQLite demo database at ``--scale`` (about 63,000 rows per unit;
16 is about a million rows; kept under bench/.cache) is exported ``--runs`` times each way,
interleaved, each run in a fresh process (so its peak RSS is its own):

* plain: ``export_organization`` -> ``ArchiveWriter`` -> the file, flushed and fsynced;
* age:   the same, with ``encryption.EncryptingWriter`` between the zip and the file.

Both use exactly the same pipeline but for that one wrapper (write_archive will take the
wrapper when encryption is wired in; until then this bench builds the pipeline itself).
Then each file is read back the way verify reads it (every row of every table, checksums
checked) and read whole as bytes: the plain file with zipfile, the age file through
``encryption.open_decrypted`` (one decryption pass into the scratch file, then AES-CTR reads).

SQLite is the fastest source, so the encrypted/plain ratio is the worst case of the three
dialects. Target (issue 18): encrypted backup time within 10 % of plain (ratio <= 1.10).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from pyrage import x25519
from sqlalchemy import create_engine

from desktop_backup import __version__
from desktop_backup.archive import (
    ArchiveWriter,
    Manifest,
    encode_rows,
    iter_batches,
    read_manifest,
)
from desktop_backup.config import SchemaMapping
from desktop_backup.db import open_engine
from desktop_backup.demo import load_demo
from desktop_backup.encryption import EncryptingWriter, open_decrypted
from desktop_backup.export import export_organization

HERE = Path(__file__).resolve().parent

TARGET_RATIO = 1.10
ORG_ID = 1
READ_CHUNK = 1024 * 1024


class _Sink:
    """export_organization's rows into the archive writer (as backup.py's native sink)."""

    def __init__(self, writer: ArchiveWriter) -> None:
        self.writer = writer

    def begin_table(self, entry, columns, count) -> None:
        self.writer.begin_table(entry)

    def write_rows(self, rows: list) -> None:
        self.writer.write_encoded(encode_rows(rows), len(rows))

    def end_table(self):
        return self.writer.end_table()


def archive_into(stream, url: str) -> int:
    """Write organization 1's archive into `stream`; returns its row count."""
    engine = open_engine(url)
    try:
        writer = ArchiveWriter(stream)
        snapshot = export_organization(engine, SchemaMapping(), ORG_ID, _Sink(writer))
        manifest = Manifest(organization={"id": ORG_ID}, created_at="", local_date="",
                            weekday="", trigger="bench", source=snapshot.source,
                            app_version=__version__, created_by={}, tables=snapshot.entries)
        writer.finish(manifest)
        return manifest.total_rows
    finally:
        engine.dispose()


def cpu_seconds() -> float:
    """User + system time of this process, all threads (the encrypting thread's too)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write_child(kind: str, url: str, target: Path, public: str) -> dict:
    cpu = cpu_seconds()
    started = time.perf_counter()
    with open(target, "wb") as raw:
        if kind == "age":
            with EncryptingWriter(raw, [x25519.Recipient.from_str(public)]) as stream:
                rows = archive_into(stream, url)
        else:
            rows = archive_into(raw, url)
        raw.flush()
        os.fsync(raw.fileno())
    return {"seconds": time.perf_counter() - started, "cpu_seconds": cpu_seconds() - cpu,
            "rows": rows, "bytes": target.stat().st_size}


def encrypt_child(plain: Path, target: Path, public: str) -> dict:
    """The encryption alone: the finished plain archive streamed through the writer. Added
    to a backup with no overlap at all, this is the most encryption can cost it."""
    cpu = cpu_seconds()
    started = time.perf_counter()
    with open(plain, "rb") as source, open(target, "wb") as raw:
        with EncryptingWriter(raw, [x25519.Recipient.from_str(public)]) as stream:
            while chunk := source.read(64 * 1024):
                stream.write(chunk)
        raw.flush()
        os.fsync(raw.fileno())
    return {"seconds": time.perf_counter() - started, "cpu_seconds": cpu_seconds() - cpu}


def read_child(kind: str, path: Path, secret: str) -> dict:
    cpu = cpu_seconds()
    started = time.perf_counter()
    opened = (open_decrypted(path, [x25519.Identity.from_str(secret)]) if kind == "age"
              else open(path, "rb"))
    with opened as handle:
        opened_at = time.perf_counter()
        with zipfile.ZipFile(handle) as zf:
            rows = sum(len(batch) for entry in read_manifest(zf).tables
                       for batch in iter_batches(zf, entry))
        checked_at = time.perf_counter()
        verify_cpu = cpu_seconds() - cpu
        handle.seek(0)
        size = 0
        while chunk := handle.read(READ_CHUNK):
            size += len(chunk)
        done = time.perf_counter()
    return {"open_seconds": opened_at - started, "verify_seconds": checked_at - started,
            "verify_cpu_seconds": verify_cpu,
            "read_all_seconds": done - checked_at, "rows": rows, "zip_bytes": size}


def child(argv: list[str]) -> None:
    mode, kind, *rest = argv
    key = sys.stdin.read().strip()
    if mode == "_write":
        result = write_child(kind, rest[0], Path(rest[1]), key)
    elif mode == "_encrypt":
        result = encrypt_child(Path(kind), Path(rest[0]), key)
    else:
        result = read_child(kind, Path(rest[0]), key)
    result["rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def peak_rss_mb() -> float:
    """This process's own peak RSS. Not ru_maxrss: Linux keeps across exec the high-water
    mark of the process that spawned us (this bench's parent, which loaded the demo)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def run_child(args: list[str], key: str) -> dict:
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], input=key,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def demo_database(cache: Path, scale: float) -> str:
    path = cache / f"encryption_s{scale:g}.sqlite"
    if not path.exists():
        print(f"  loading the demo database at scale {scale:g} ...", flush=True)
        cache.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.unlink(missing_ok=True)
        engine = create_engine(f"sqlite:///{partial}")
        try:
            load_demo(engine, scale=scale)
        finally:
            engine.dispose()
        partial.rename(path)
    return f"sqlite:///{path}"


def median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        child(sys.argv[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=4)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cache-dir", type=Path, default=HERE / ".cache")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args()

    url = demo_database(args.cache_dir, args.scale)
    identity = x25519.Identity.generate()
    secret, public = str(identity), str(identity.to_public())
    writes: dict[str, list[dict]] = {"plain": [], "age": []}
    reads: dict[str, list[dict]] = {"plain": [], "age": []}
    alone: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="encryption-bench-") as tmp:
        files = {"plain": Path(tmp) / "backup.zip", "age": Path(tmp) / "backup.zip.age"}
        for run in range(args.runs):
            order = ("plain", "age") if run % 2 == 0 else ("age", "plain")  # neither always first
            for kind in order:
                files[kind].unlink(missing_ok=True)
                writes[kind].append(run_child(["_write", kind, url, str(files[kind])], public))
            for kind in order:
                reads[kind].append(run_child(["_read", kind, str(files[kind])], secret))
            alone.append(run_child(["_encrypt", str(files["plain"]),
                                    str(Path(tmp) / "alone.age")], public))
            print(f"  run {run + 1}/{args.runs}: plain {writes['plain'][-1]['seconds']:.2f} s, "
                  f"age {writes['age'][-1]['seconds']:.2f} s", flush=True)
    report = summarize(writes, reads, alone, args)
    if args.json:
        args.json.write_text(json.dumps({"writes": writes, "reads": reads, "alone": alone,
                                         **report},
                                        indent=1))
    return 1 if args.strict and report["write_ratio"] > TARGET_RATIO else 0


def summarize(writes: dict[str, list[dict]], reads: dict[str, list[dict]], alone: list[dict],
              args) -> dict:
    rows = writes["plain"][0]["rows"]
    assert all(run["rows"] == rows for kind in writes for run in writes[kind] + reads[kind])
    mb = {kind: writes[kind][0]["bytes"] / 1e6 for kind in writes}
    zip_mb = reads["plain"][0]["zip_bytes"] / 1e6
    write_s = {kind: median(writes[kind], "seconds") for kind in writes}
    cpu_s = {kind: median(writes[kind], "cpu_seconds") for kind in writes}
    verify_s = {kind: median(reads[kind], "verify_seconds") for kind in reads}
    open_s = median(reads["age"], "open_seconds")
    read_s = {kind: median(reads[kind], "read_all_seconds") for kind in reads}
    rss = {kind: max(run["rss_mb"] for run in writes[kind]) for kind in writes}
    read_rss = {kind: max(run["rss_mb"] for run in reads[kind]) for kind in reads}
    ratio = write_s["age"] / write_s["plain"]
    print(f"\nOrganization {ORG_ID}, SQLite, scale {args.scale:g}: {rows:,} rows; medians of "
          f"{args.runs} (peak RSS: the largest)")
    print(f"{'':24}{'plain':>12}{'age':>12}{'age/plain':>12}")
    print(f"{'backup (s)':24}{write_s['plain']:12.2f}{write_s['age']:12.2f}{ratio:12.3f}")
    print(f"{'backup CPU (s)':24}{cpu_s['plain']:12.2f}{cpu_s['age']:12.2f}"
          f"{cpu_s['age'] / cpu_s['plain']:12.3f}")
    alone_s = median(alone, "seconds")
    print(f"{'encryption alone (s)':24}{'':>12}{alone_s:12.2f}"
          f"{(write_s['plain'] + alone_s) / write_s['plain']:12.3f}  (bound: no overlap)")
    print(f"{'backup rows/s':24}{rows / write_s['plain']:12,.0f}{rows / write_s['age']:12,.0f}")
    print(f"{'file (MB)':24}{mb['plain']:12.1f}{mb['age']:12.1f}")
    print(f"{'backup peak RSS (MB)':24}{rss['plain']:12.0f}{rss['age']:12.0f}")
    print(f"{'verify-read (s)':24}{verify_s['plain']:12.2f}{verify_s['age']:12.2f}"
          f"{verify_s['age'] / verify_s['plain']:12.3f}")
    vcpu = {kind: median(reads[kind], "verify_cpu_seconds") for kind in reads}
    print(f"{'verify-read CPU (s)':24}{vcpu['plain']:12.2f}{vcpu['age']:12.2f}"
          f"{vcpu['age'] / vcpu['plain']:12.3f}")
    print(f"{'  of which decrypt (s)':24}{'':>12}{open_s:12.2f}")
    print(f"{'read-all (MB/s)':24}{zip_mb / read_s['plain']:12.0f}{zip_mb / read_s['age']:12.0f}")
    print(f"{'read peak RSS (MB)':24}{read_rss['plain']:12.0f}{read_rss['age']:12.0f}")
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    print(f"target: encrypted backup within {TARGET_RATIO - 1:.0%} of plain: {verdict}")
    return {"rows": rows, "write_ratio": ratio, "encrypt_alone_seconds": alone_s,
            "write_seconds": write_s, "cpu_seconds": cpu_s,
            "verify_seconds": verify_s, "decrypt_seconds": open_s, "rss_mb": rss,
            "read_rss_mb": read_rss}


if __name__ == "__main__":
    sys.exit(main())
