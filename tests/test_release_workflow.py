"""The release workflow (.github/workflows/release.yml) asks the hosted runners for everything
issue 22 needs; this reads it as data, since no Windows or Mac runs here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
sys.path.insert(0, str(ROOT / "installer" / "macos"))
from check_app import minimum_versions  # noqa: E402


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_a_version_tag_or_a_person_starts_it():
    workflow = _workflow()
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert triggers["push"]["tags"] == ["v*"]
    assert "workflow_dispatch" in triggers


def test_the_jobs_build_on_each_target_and_the_release_waits_for_all():
    jobs = _workflow()["jobs"]
    assert set(jobs) == {"linux", "windows", "macos", "release"}
    assert ".ci/run" in _runs(jobs["linux"])
    assert jobs["windows"]["runs-on"].startswith("windows")
    arches = {(m["arch"], m["runner"]) for m in jobs["macos"]["strategy"]["matrix"]["include"]}
    assert {a for a, _ in arches} == {"arm64", "x86_64"}
    assert jobs["release"]["needs"] == ["linux", "windows", "macos"]
    assert "sha256sum" in _runs(jobs["release"])
    assert jobs["release"]["permissions"] == {"contents": "write"}


def test_windows_installs_self_checks_uninstalls_and_keeps_the_backups():
    job = _workflow()["jobs"]["windows"]
    assert job["defaults"]["run"]["shell"] == "pwsh"  # the wheelhouse check too: not bash
    runs = _runs(job)
    for needed in ("build.ps1", "/VERYSILENT", "desktop-backup-cli.exe\" --self-check",
                   "unins000.exe", "org_MEDP_*_backup.zip", "--no-index --find-links wheelhouse"):
        assert needed in runs, needed


def test_macos_signs_notarizes_and_self_checks_from_the_mounted_image():
    job = _workflow()["jobs"]["macos"]
    runs = _runs(job)
    for needed in ("python-3.11.9-macos11.pkg", "build_dmg.sh", "check_app.py",
                   "notarytool submit", "--wait", "stapler staple", "spctl --assess",
                   "hdiutil attach", "Contents/MacOS/desktop-backup\" --self-check",
                   "build_wheelhouse.sh --check"):
        assert needed in runs, needed


def test_secrets_are_only_read_into_the_environment():
    # A secret in an `if:` is an error on GitHub; steps test env values instead.
    text = WORKFLOW.read_text()
    for line in text.splitlines():
        if "secrets." in line:
            assert re.match(r"\s+[A-Z0-9_]+: \$\{\{ secrets\.[A-Z0-9_]+ \}\}$", line), line
    for job in _workflow()["jobs"].values():
        for step in job["steps"]:
            assert "secrets" not in str(step.get("if", "")), step


def test_the_mac_check_reads_the_minimum_macos_of_each_architecture():
    otool = """Load command 9
      cmd LC_BUILD_VERSION
  cmdsize 32
 platform 1
    minos 13.0
      sdk 14.2
Load command 10
      cmd LC_VERSION_MIN_MACOSX
  cmdsize 16
  version 10.9
      sdk 10.15
"""
    assert minimum_versions(otool) == ["13.0", "10.9"]


def test_the_mac_check_runs_only_on_a_real_app(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "installer" / "macos" / "check_app.py"),
                          str(tmp_path / "missing.app"), "0.1.0"], capture_output=True,
                         text=True)
    assert run.returncode != 0  # no Info.plist: never a silent pass
