"""A real backup that stops mid-run and waits to be killed (test_crash_recovery).

argv: database URL, the workstation's home folder. Prints "mid-run" once rows are being
written (the claim, the lock and the temporary file all exist then), then sleeps until the
test kills it -9.
"""

import sys
import time
from pathlib import Path

from desktop_backup.backup import run_backup
from desktop_backup.config import AppPaths, SchemaMapping, Settings, prepare_own_folders
from desktop_backup.db import open_engine
from desktop_backup.organizations import find_organization
from desktop_backup.work import Actor, Site

url, root = sys.argv[1], Path(sys.argv[2])
paths = AppPaths(root / "config", root / "data", root / "logs")
prepare_own_folders(paths, Settings())
folder = paths.default_backup_dir
engine = open_engine(url)
with engine.connect() as conn:
    org = find_organization(conn, SchemaMapping(), "MEDP")


def stop_here(progress) -> None:
    if progress.rows_done > 0:
        print("mid-run", flush=True)
        time.sleep(600)


run_backup(Site(engine, SchemaMapping()), org, Actor(3, "medp.admin"), folder, trigger="login",
           progress=stop_here)
