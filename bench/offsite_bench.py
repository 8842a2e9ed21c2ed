"""Off-site throughput: our verified upload and checked download against plain `rclone copyto`.

    .venv/bin/python bench/offsite_bench.py [--size-mb 50] [--runs 3] [--kind s3|sftp|webdav|all]

Starts `rclone serve s3` (or sftp, webdav) on 127.0.0.1 from the bundled rclone, serving a
temporary folder, and moves one incompressible file of --size-mb to it and back, runs
interleaved: ours (offsite.upload_verified as a push calls it: one rclone run straight to the
slot's name where the backend keeps half-sent files apart, else a temporary name, a read-back
and a rename; rclone's checked hash compared with ours; and offsite.download_to as a pull
calls it, with progress reported) and the reference (`rclone copyto` of the same file, with
the same flags). Prints the median times, MB/s, ours/reference throughput (target >= 0.9x)
and peak RSS. Never part of `make test`.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from desktop_backup.offsite import (  # noqa: E402
    Rclone,
    download_to,
    local_hashes,
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
        server = Server(kind, root / "server").start()
        try:
            remote, secrets = parse_remote(server.remote)
            rc = Rclone(remote, secrets)
            back = root / "back" / local.name
            times: dict[str, list[float]] = {k: [] for k in (
                "ours up", "hash+up", "rclone up", "ours down", "rclone down")}
            known = local_hashes(local)

            def ours_up() -> None:  # as push, once its ownership check has read the hashes
                upload_verified(rc, local, "ours", known["sha256"], progress=lambda *_: None,
                                known=known)

            def hashed_up() -> None:  # the ownership check's pass over the file, then that
                again = local_hashes(local)
                upload_verified(rc, local, "ours", again["sha256"], progress=lambda *_: None,
                                known=again)

            def ours_down() -> None:  # as pull, before its archive check
                temp = download_to(rc, remote.join("ours", local.name), back,
                                   progress=lambda *_: None)
                temp.replace(back)

            for _ in range(runs):
                times["ours up"].append(timed(ours_up))
                times["rclone up"].append(timed(lambda: rc.run(
                    "copyto", "--ignore-times", str(local), remote.join("plain", local.name))))
                times["hash+up"].append(timed(hashed_up))
                times["ours down"].append(timed(ours_down))
                times["rclone down"].append(timed(lambda: rc.run(
                    "copyto", "--ignore-times", remote.join("plain", local.name),
                    str(root / "plain-back"))))
            rclone_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        finally:
            server.stop()
        assert local_hashes(back)["sha256"] == local_hashes(local)["sha256"]
    missed = report(kind, size_mb, times)
    own_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: rclone client {rclone_rss:.0f} MB (largest rclone run, ours or the "
          f"reference), this Python process {own_rss:.0f} MB")
    return missed


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
    whole = statistics.median(times["rclone up"]) / statistics.median(times["hash+up"])
    print(f"  upload with the ownership check's hash pass: {whole:.2f}x (for information)")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kind", choices=("s3", "sftp", "webdav", "all"), default="all")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    if args.kind == "all":  # one process each: peak RSS is a process's own
        codes = [subprocess.run([sys.executable, __file__, "--kind", kind, "--size-mb",
                                 str(args.size_mb), "--runs", str(args.runs),
                                 *(["--strict"] if args.strict else [])]).returncode
                 for kind in ("s3", "sftp", "webdav")]
        return max(codes)
    missed = bench(args.kind, args.size_mb, args.runs)
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
