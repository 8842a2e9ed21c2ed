"""The house's boundaries, checked by import-linter on every `make test`.

The contracts live in pyproject.toml ([tool.importlinter]): only the window and the entry
point import Qt or the window; the window never imports sqlalchemy; no package has an import
cycle between its modules (an import hidden inside a function counts too); and floors — of
the whole program, of the restore package, of the use cases and of the window — that imports
only go down. A contract that checks nothing would pass unnoticed, so each is also broken on
purpose in a copy of the code, and every module must stand on a floor.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "desktop_backup"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
    "contracts"]


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """Run import-linter on the package under `root` with that folder's pyproject.toml."""
    if not LINT_IMPORTS.exists():
        pytest.fail(f"import-linter is not installed ({LINT_IMPORTS}); `make` installs it")
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", str(root / "pyproject.toml")],
                          cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=300)


def test_the_code_keeps_every_boundary():
    run = lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in run.stdout


@pytest.mark.parametrize("module, line, contract", [
    ("work.py", "import PySide6.QtCore", "Only the window"),
    ("usecases/files.py", "from desktop_backup.ui import theme", "Only the window"),
    ("ui/guide.py", "import sqlalchemy", "The window writes no SQL"),
    ("history.py", "from desktop_backup import backup", "No import cycles"),
    ("wording.py", "from desktop_backup import usecases", "Floors of the house"),
    ("restore/values.py", "from desktop_backup.restore import flow", "The restore package"),
    ("ui/session.py", "from desktop_backup.ui import main_window", "The window:"),
])
def test_a_broken_boundary_is_caught(tmp_path, module, line, contract):
    shutil.copytree(PACKAGE, tmp_path / "desktop_backup",
                    ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "desktop_backup" / module
    # Inside a function, where an import hides best.
    target.write_text(target.read_text() + f"\n\ndef _broken_on_purpose():\n    {line}\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    run = lint_imports(tmp_path)
    assert run.returncode != 0
    [name] = [c["name"] for c in CONTRACTS if c["name"].startswith(contract)]
    assert f"{name} BROKEN" in " ".join(run.stdout.split()), run.stdout  # lines wrap


def _rooms(folder: Path) -> set[str]:
    """The modules and packages directly in `folder`, by name."""
    return {p.stem for p in folder.glob("*.py") if p.stem != "__init__"} | {
        p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}


def _placed(contract: dict) -> set[str]:
    names = set()
    for layer in contract["layers"]:
        names |= {n.strip().removeprefix("desktop_backup.") for n in re.split(r"[|:]", layer)}
    return names


@pytest.mark.parametrize("name, folder", [
    ("Floors of the house", PACKAGE),
    ("The restore package", PACKAGE / "restore"),
    ("The use-case layer", PACKAGE / "usecases"),
    ("The window:", PACKAGE / "ui"),
])
def test_every_room_stands_on_a_floor(name, folder):
    [contract] = [c for c in CONTRACTS if c["name"].startswith(name)]
    assert _rooms(folder) - _placed(contract) == set(), "place the new module on a floor"
