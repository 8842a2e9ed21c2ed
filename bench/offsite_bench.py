"""Off-site throughput: our verified upload and checked download against plain `rclone copyto`.

    .venv/bin/python bench/offsite_bench.py [--size-mb 50] [--runs 3] [--kind s3]

Starts `rclone serve s3` (or sftp, webdav) on 127.0.0.1 from the bundled rclone, serving a
temporary folder, and moves one incompressible file of --size-mb to it and back, runs
interleaved: ours (offsite.upload_verified: temporary name, hash check, server-side move;
offsite.download_to plus the SHA-256 of what arrived) and the reference (`rclone copyto` of the
same file, with the same flags). Prints the median times, MB/s and ours/reference throughput
(target >= 0.9x). Never part of `make test`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from desktop_backup.offsite import (  # noqa: E402
    Rclone,
    download_to,
    file_sha256,
    parse_remote,
    upload_verified,
)
from tests.rclone_servers import Server  # noqa: E402

TARGET = 0.9


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def bench(kind: str, size_mb: int, runs: int) -> int:
    with tempfile.TemporaryDirectory(prefix="offsite-bench-") as tmp:
        root = Path(tmp)
        local = root / "org_BENCH_monday_backup.zip"
        with open(local, "wb") as out:
            for _ in range(size_mb):
                out.write(os.urandom(1 << 20))
        sha = file_sha256(local)
        server = Server(kind, root / "server").start()
        try:
            remote, secrets = parse_remote(server.remote)
            rc = Rclone(remote, secrets)
            back = root / "back" / local.name
            times: dict[str, list[float]] = {k: [] for k in
                                             ("ours up", "rclone up", "ours down", "rclone down")}
            for _ in range(runs):
                times["ours up"].append(timed(lambda: upload_verified(rc, local, "ours", sha)))
                times["rclone up"].append(timed(lambda: rc.run(
                    "copyto", "--ignore-times", str(local), remote.join("plain", local.name))))

                def ours_down() -> None:
                    temp = download_to(rc, remote.join("ours", local.name), back)
                    assert file_sha256(temp) == sha
                    temp.replace(back)
                times["ours down"].append(timed(ours_down))
                times["rclone down"].append(timed(lambda: rc.run(
                    "copyto", "--ignore-times", remote.join("plain", local.name),
                    str(root / "plain-back"))))
        finally:
            server.stop()
    return report(kind, size_mb, times)


def report(kind: str, size_mb: int, times: dict[str, list[float]]) -> int:
    print(f"rclone serve {kind}, {size_mb} MB file, median of {len(times['ours up'])} runs")
    print(f"{'':12} {'seconds':>8} {'MB/s':>8}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:12} {median:8.2f} {size_mb / median:8.1f}")
    missed = 0
    for way in ("up", "down"):
        ratio = statistics.median(times[f"rclone {way}"]) / statistics.median(times[f"ours {way}"])
        verdict = "ok" if ratio >= TARGET else f"below the {TARGET}x target"
        missed += ratio < TARGET
        print(f"{way:>4}load: ours at {ratio:.2f}x of plain rclone copyto ({verdict})")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kind", choices=("s3", "sftp", "webdav"), default="s3")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    missed = bench(args.kind, args.size_mb, args.runs)
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
