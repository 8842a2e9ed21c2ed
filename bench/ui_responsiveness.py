"""Benchmark: does the window keep answering while it backs up a large organization?

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/ui_responsiveness.py [--scale 16] [--runs 3]
                                                                          [--db FILE] [--keep]

Loads the demo billing data at ``--scale`` into a temporary SQLite file with
``demo.load_demo`` (scale 16 gives organization MEDP about a million rows; loading takes a few
minutes and a few GB of memory), or uses an existing file of that schema given with ``--db``
(for example ``bench/.cache/bench_backup_s16.sqlite`` made by backup_bench.py). It then logs in
as the demo admin, opens the real main window (offscreen) and presses Back up now ``--runs``
times. A QTimer fires every 5 ms on the UI thread throughout; the longest gap between two
ticks beyond those 5 ms is the longest the event loop stalled, i.e. the longest a click or a
repaint would have waited. Target: median of the runs' longest stalls below 100 ms.
Exit status 1 when the target is missed and --strict is given.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QEventLoop, Qt, QTimer  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402

from desktop_backup.auth import LoginThrottle, authenticate  # noqa: E402
from desktop_backup.config import AppPaths, Settings  # noqa: E402
from desktop_backup.db import open_engine  # noqa: E402
from desktop_backup.demo import DEMO_PASSWORD, load_demo  # noqa: E402
from desktop_backup.ui.app import application, quiet_offscreen_warnings  # noqa: E402
from desktop_backup.ui.env import Env  # noqa: E402
from desktop_backup.ui.main_window import MainWindow  # noqa: E402
from desktop_backup.ui.session import ConsoleSession  # noqa: E402
from desktop_backup.ui.theme import apply_theme  # noqa: E402
from desktop_backup.usecases import LoginResult  # noqa: E402

TICK_MS = 5
TARGET_MS = 100.0


class StallProbe:
    """A 5 ms timer on the UI thread; remembers the longest wait beyond its interval."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.longest_ms = 0.0
        self.ticks = 0
        self._last = 0.0

    def start(self) -> None:
        self.longest_ms, self.ticks = 0.0, 0
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        self._tick()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest_ms = max(self.longest_ms, (now - self._last) * 1000 - TICK_MS)
        self._last = now
        self.ticks += 1


def make_database(scale: float, folder: Path) -> Path:
    path = folder / f"ui_bench_s{scale:g}.sqlite"
    print(f"Loading the demo data at scale {scale:g} into {path} …", flush=True)
    started = time.perf_counter()
    engine = create_engine(f"sqlite:///{path}")
    try:
        counts = load_demo(engine, scale=scale)
    finally:
        engine.dispose()
    print(f"  {sum(counts.values()):,} rows in {time.perf_counter() - started:.0f} s", flush=True)
    return path


def one_run(window: MainWindow, probe: StallProbe) -> tuple[float, float, int]:
    """Back up now, wait for the backup and the refresh after it; (stall ms, s, rows)."""
    loop = QEventLoop()
    results = []
    window.session.backupFinished.connect(results.append)
    window.session.backupFailed.connect(lambda message, _e: results.append(message))
    window.session.overviewLoaded.connect(loop.quit)
    started = time.perf_counter()
    probe.start()
    task = window.session.start_backup("manual", force=True)
    if task is None:
        raise RuntimeError("the window would not start a backup")
    loop.exec()
    probe.stop()
    elapsed = time.perf_counter() - started
    window.session.backupFinished.disconnect(results.append)
    window.session.overviewLoaded.disconnect(loop.quit)
    result = results[-1]
    if isinstance(result, str):
        raise RuntimeError(f"the backup failed: {result}")
    return probe.longest_ms, elapsed, result.rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=16.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--db", type=Path, help="an existing demo-schema SQLite file to use")
    parser.add_argument("--keep", action="store_true", help="keep the generated database")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()

    quiet_offscreen_warnings()
    app = application()
    apply_theme(app, "light")
    work = Path(tempfile.mkdtemp(prefix="ui-bench-"))
    db = args.db or make_database(args.scale, work)
    paths = AppPaths(work / "config", work / "data", work / "logs")
    env = Env(paths=paths, settings=Settings(auto_backup_on_login=False))
    engine = open_engine(f"sqlite:///{db.resolve()}")
    session = authenticate(engine, env.settings.mapping, "medp.admin", DEMO_PASSWORD,
                           LoginThrottle(paths.login_throttle_file))
    window = MainWindow(ConsoleSession(env, LoginResult(engine, session)))
    window.resize(1280, 760)
    window.show()
    loop = QEventLoop()
    window.session.overviewLoaded.connect(loop.quit)
    window.session.start()
    loop.exec()
    window.session.overviewLoaded.disconnect(loop.quit)

    probe = StallProbe()
    stalls = []
    print(f"Backing up {session.organization.name} with the window open; "
          f"probe every {TICK_MS} ms:")
    for run in range(1, args.runs + 1):
        stall, seconds, rows = one_run(window, probe)
        stalls.append(stall)
        print(f"  run {run}: {rows:,} rows in {seconds:.1f} s; longest event-loop stall "
              f"{stall:.1f} ms ({probe.ticks:,} ticks)", flush=True)
    median = statistics.median(stalls)
    verdict = "PASS" if median < TARGET_MS else "MISS"
    print(f"{verdict}: median of the longest stalls {median:.1f} ms "
          f"(target < {TARGET_MS:.0f} ms)")

    window.close()  # waits for its threads and disposes of the engine
    if args.keep and not args.db:
        print(f"Kept {db}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if args.strict and verdict == "MISS" else 0


if __name__ == "__main__":
    sys.exit(main())
