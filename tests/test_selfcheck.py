"""`desktop-backup --self-check`: the installation proves itself, step by step."""

from __future__ import annotations

import os
import subprocess
import sys

from desktop_backup.selfcheck import FAIL, PASS, Step, run_self_check


def test_self_check_runs_every_step_and_passes_here():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    run = subprocess.run([sys.executable, "-m", "desktop_backup", "--self-check"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.strip().splitlines()
    names = [line.split(":")[0].split("  ", 1)[1] for line in lines[:-1]]
    assert names == ["Version", "Qt window toolkit", "Password store", "Demo database",
                     "Login", "Backup", "Verify", "Restore"]
    assert all(line.startswith(("PASS", "WARN")) for line in lines[:-1])
    assert lines[-1].startswith("Self-check passed")


def test_a_failing_step_fails_the_verdict():
    printed: list[str] = []
    report = run_self_check(lambda: Step("Qt window toolkit", FAIL, "no platform plugin"),
                            emit=printed.append)
    assert not report.ok
    assert "FAIL  Qt window toolkit: no platform plugin" in printed
    assert printed[-1].startswith("Self-check FAILED: Qt window toolkit")
    assert [s.outcome for s in report.steps if s.name == "Restore"] == [PASS]
