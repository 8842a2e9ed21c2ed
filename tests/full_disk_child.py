"""One backup into a nearly full disk, run inside a private mount namespace (test_backup).

argv: database URL, a folder holding last week's slot file, an empty mount point.
Mounts a tmpfs just big enough for last week's copy at the mount point, copies that file in,
runs today's backup into it and prints a JSON report of what happened and what is left.
"""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from desktop_backup.backup import run_backup
from desktop_backup.config import SchemaMapping
from desktop_backup.db import open_engine
from desktop_backup.errors import DesktopBackupError
from desktop_backup.organizations import find_organization
from desktop_backup.work import Actor, Site
from tests.clock import FakeClock

url, source, mount = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
last_week = next(source.iterdir())
size = last_week.stat().st_size + 16 * 1024
subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True)
shutil.copy2(last_week, mount / last_week.name)
engine = open_engine(url)
with engine.connect() as conn:
    org = find_organization(conn, SchemaMapping(), "MEDP")
error = None
try:
    run_backup(Site(engine, SchemaMapping(), FakeClock()), org, Actor(3, "medp.admin"), mount,
               trigger="login")
except DesktopBackupError as exc:
    error = str(exc)
print(json.dumps({
    "error": error,
    "files": sorted(p.name for p in mount.iterdir()),
    "intact": hashlib.sha256((mount / last_week.name).read_bytes()).hexdigest()
    == hashlib.sha256(last_week.read_bytes()).hexdigest(),
}))
