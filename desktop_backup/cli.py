"""The `desktop-backup` command line (the contract is in shared/DESIGN.md).

Exit status: 0 success or nothing to do, 1 the operation failed (one sentence on stderr,
nothing lost), 2 usage error. With --json, one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from desktop_backup import __version__
from desktop_backup.config import AppPaths, Settings, load_settings
from desktop_backup.errors import DesktopBackupError, UsageError

PASSWORD_ENV = "DESKTOP_BACKUP_PASSWORD"  # noqa: S105 - the variable's name, not a secret


@dataclass
class Context:
    """What every command needs: where things live and the user's settings."""

    paths: AppPaths
    settings: Settings
    json: bool


class Outcome(dict):
    """What a command reports: printed as text, or as one JSON object with --json."""


def read_password(prompt: str = "Password: ") -> str:
    """The login password: typed at a terminal, or from $DESKTOP_BACKUP_PASSWORD without one."""
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(prompt)
    value = os.environ.get(PASSWORD_ENV)
    if value is None:
        raise UsageError(
            f"No terminal to ask for the password; set {PASSWORD_ENV} to run without one."
        )
    return value


def cmd_demo(ctx: Context, args: argparse.Namespace) -> Outcome:
    from desktop_backup.demo import DEMO_PASSWORD, create_demo_database, demo_logins

    path = args.path or ctx.paths.demo_database
    result = create_demo_database(path)
    logins = [
        {"username": login.username, "role": login.role, "organization": login.organization,
         "note": login.note}
        for login in demo_logins()
    ]
    verb = "Created" if result.created else "Kept the existing"
    lines = [f"{verb} demo billing database: {result.path}", f"URL: {result.url}",
             f"Demo logins (password for all: {DEMO_PASSWORD}):"]
    for login in logins:
        org = login["organization"] or "all organizations"
        note = f" - {login['note']}" if login["note"] else ""
        lines.append(f"  {login['username']:<14} {login['role']:<12} {org}{note}")
    return Outcome(ok=True, message="\n".join(lines), url=result.url, path=str(result.path),
                   created=result.created, password=DEMO_PASSWORD, logins=logins)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="desktop-backup",
        description="Daily organization backups of the billing database, and safe restores.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command")

    demo = sub.add_parser("demo", help="create the demo SQLite billing database")
    demo.add_argument("--path", help="where to create it (default: in the data folder)")
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    demo.set_defaults(handler=cmd_demo)
    return parser


def _emit(outcome: Outcome, as_json: bool) -> None:
    if as_json:
        print(json.dumps(outcome, default=str))
    else:
        print(outcome["message"])


def main(argv: Sequence[str] | None = None, paths: AppPaths | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    as_json = bool(getattr(args, "json", False))
    try:
        paths = paths or AppPaths.default()
        ctx = Context(paths=paths, settings=load_settings(paths), json=as_json)
        outcome = handler(ctx, args)
    except UsageError as exc:
        _fail(str(exc), as_json)
        return 2
    except DesktopBackupError as exc:
        _fail(str(exc), as_json)
        return 1
    except KeyboardInterrupt:
        _fail("Stopped by the user; nothing was changed.", as_json)
        return 1
    _emit(outcome, as_json)
    return 0 if outcome.get("ok", True) else 1


def _fail(message: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"ok": False, "message": message}))
    print(f"desktop-backup: {message}", file=sys.stderr)
