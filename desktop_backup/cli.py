"""The `desktop-backup` command line (the contract is in shared/DESIGN.md).

Exit status: 0 success or nothing to do, 1 the operation failed (one sentence on stderr,
nothing lost), 2 usage error. With --json, one JSON object on stdout. Each command asks the
use-case layer (usecases.py), the same functions the window calls, and says the result in
the window's words (wording.py). The window itself is handed in by the entry module
(launcher.py): this module never imports Qt.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy.engine import Engine

from desktop_backup import __version__, usecases, wording
from desktop_backup import offsite_queue as oq
from desktop_backup.auth import LoginThrottle, Session
from desktop_backup.backup import BackupResult, run_backup, slot_filename
from desktop_backup.config import (
    AppPaths,
    SchemaMapping,
    Settings,
    load_settings,
    prepare_own_folders,
    url_password,
    with_mapping_overrides,
    write_private_text,
)
from desktop_backup.console_tables import CLI_FLAG
from desktop_backup.demo import DEMO_PASSWORD, create_demo_database, demo_logins
from desktop_backup.errors import DesktopBackupError, UsageError
from desktop_backup.history import WEEKDAYS, AlreadyRunning
from desktop_backup.keystore import keyring_status
from desktop_backup.logs import setup_logging
from desktop_backup.offsite import OffsiteError, redact_remote
from desktop_backup.offsite_monthly import months_kept
from desktop_backup.opening import verify_archive
from desktop_backup.organizations import Organization
from desktop_backup.orgkeys import RETYPE_CHARS
from desktop_backup.qtplatform import display_available, probe_platform
from desktop_backup.restore import apply_restore, check_restore, preview_text
from desktop_backup.scratch import sweep_leftovers
from desktop_backup.selfcheck import FAIL, Step, run_self_check
from desktop_backup.work import Actor, Progress, Site

log = logging.getLogger("desktop_backup.cli")

DB_HELP = ("the billing database's address, for example mysql://user@host/billing, "
           "postgresql://user@host/billing or sqlite:///C:/Billing/billing.db")
CONSOLE_SCHEMA_HELP = ("keep the console's own tables in this schema (PostgreSQL), database "
                       "on the same server (MySQL/MariaDB) or file beside the billing file "
                       "(SQLite: <billing name>.NAME.sqlite) instead of beside the billing "
                       "tables (default: the settings' console_schema, else beside them)")
PASSWORD_ENV = "DESKTOP_BACKUP_PASSWORD"  # noqa: S105 - the variable's name, not a secret
DB_PASSWORD_ENV = "DESKTOP_BACKUP_DB_PASSWORD"  # noqa: S105 - likewise
T = TypeVar("T")


@dataclass(frozen=True)
class Window:
    """What the command line asks of the window, handed in by the entry module (launcher.py)
    so that this core module never imports Qt or desktop_backup.ui."""

    run: Callable[[AppPaths, Settings, str | None], int]  # the console, until it is closed
    screenshot: Callable[[AppPaths, Settings, Engine, Session], Path]  # run-demo, no display
    qt_probe: Callable[[], int]  # --qt-probe: can Qt's window platform start here?
    qt_step: Callable[[], Step]  # --self-check's step for the window toolkit


@dataclass
class Context:
    """What every command needs: where things live, the user's settings, and the window
    (None where the entry module gave none: the command line still works)."""

    paths: AppPaths
    settings: Settings
    json: bool
    window: Window | None = None


class Outcome(dict):
    """What a command reports: printed as text, or as one JSON object with --json."""


def read_password(prompt: str = "Password: ", env: str = PASSWORD_ENV) -> str:
    """A password typed at a terminal, or from the environment variable `env` without one."""
    if _interactive():
        return getpass.getpass(prompt)
    value = os.environ.get(env)
    if value is None:
        raise UsageError(
            f"No terminal to ask for the password; set {env} to run without one."
        )
    return value


def _interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def cmd_demo(ctx: Context, args: argparse.Namespace) -> Outcome:
    path = getattr(args, "path", None) or ctx.paths.demo_database
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


def _mapping(ctx: Context, args: argparse.Namespace) -> SchemaMapping:
    return with_mapping_overrides(ctx.settings.mapping, getattr(args, "tenant_table", None),
                                  getattr(args, "tenant_column", None),
                                  getattr(args, "ownership", None))


def _site(ctx: Context, args: argparse.Namespace, engine: Engine) -> Site:
    return Site(engine, _mapping(ctx, args))


def _settings(ctx: Context, args: argparse.Namespace) -> Settings:
    """The settings, with what this command's options change (mapping, --console-schema)."""
    return dataclasses.replace(ctx.settings, mapping=_mapping(ctx, args),
                               console_schema=getattr(args, "console_schema", None)
                               or ctx.settings.console_schema)


def _open_database(ctx: Context, args: argparse.Namespace, *,
                   console_tables: bool = True) -> Engine:
    """The database --db or --profile names, for the commands that log nobody in.

    `console_tables` False for a command that only reads the schema (`scope`): it adds
    nothing, so it asks nothing, and a support engineer can review a foreign schema first."""
    engine = _with_db_password(args, lambda db_password: usecases.open_database(
        ctx.paths, _settings(ctx, args), args.db, getattr(args, "profile", None),
        db_password))
    if console_tables:
        _console_tables(ctx, args, engine)
    return engine


def _console_tables(ctx: Context, args: argparse.Namespace, engine: Engine) -> None:
    """In a database that is not the billing app's, the console's tables are created only
    when --create-console-tables or the setting allows it; else one sentence, nothing done."""
    allowed = ctx.settings.create_console_tables or getattr(args, "create_console_tables",
                                                            False)
    try:
        usecases.require_console_tables(engine, allowed)
    except BaseException:
        engine.dispose()
        raise


def _login(ctx: Context, args: argparse.Namespace) -> usecases.LoginResult:
    """--user logged in on the database, through the login the window uses."""
    password = read_password(f"Password for {args.user}: ")
    settings = _settings(ctx, args)
    throttle = LoginThrottle(ctx.paths.login_throttle_file)
    return _with_db_password(args, lambda db_password: usecases.login(
        ctx.paths, settings, args.db, getattr(args, "profile", None), db_password, args.user,
        password, throttle))


def _with_db_password(args: argparse.Namespace, connect: Callable[[str | None], T]) -> T:
    """Connect as a command line does: a --db address uses DESKTOP_BACKUP_DB_PASSWORD when
    set, a profile its saved password; else no password (trust or socket authentication),
    and when the server wants one, ask at a terminal (a script gets the server's refusal,
    or for a profile, the variable)."""
    try:
        return connect(_db_password_from_env(getattr(args, "db", None)))
    except usecases.DatabasePasswordNeeded as exc:
        if exc.profile is None:
            if not _interactive():
                raise exc.refusal from None
            return connect(getpass.getpass("Database password: "))
        status = keyring_status()
        reason = status.message if not status.usable else "No database password is saved for it."
        print(f"Profile '{exc.profile}': {reason}", file=sys.stderr)
        return connect(read_password(f"Database password for profile '{exc.profile}': ",
                                     DB_PASSWORD_ENV))


def _db_password_from_env(url: str | None) -> str | None:
    """DESKTOP_BACKUP_DB_PASSWORD for a server address that holds no password itself."""
    if not url or url.startswith("sqlite") or url_password(url):
        return None
    return os.environ.get(DB_PASSWORD_ENV) or None


def warn_url_password(url: str | None) -> None:
    """A password inside --db can be read by every local user (ps, /proc/<pid>/cmdline)."""
    if url and url_password(url):
        print("desktop-backup: warning: the --db address holds a database password, which "
              "other users of this computer can read in the process list; leave it out and "
              f"set {DB_PASSWORD_ENV}, or type it when asked.", file=sys.stderr)


def _authorized(ctx: Context, args: argparse.Namespace) -> tuple[Site, Session, Organization]:
    """Log --user in and check they may act for --org: (site, session, organization). The
    caller disposes of site.engine."""
    login = _login(ctx, args)
    site = _site(ctx, args, login.engine)
    try:
        org = usecases.acting_for(site, login.session, args.org)
        _console_tables(ctx, args, login.engine)  # after the refusals that need no table
        return site, login.session, org
    except BaseException:
        login.engine.dispose()
        raise


def _folder(ctx: Context, args: argparse.Namespace) -> Path:
    return Path(args.dir) if getattr(args, "dir", None) else ctx.settings.backup_folder(ctx.paths)


def _prepare_own_folders(ctx: Context) -> None:
    """A fresh workstation has none of its own folders yet; make them (owner-only)."""
    try:
        prepare_own_folders(ctx.paths, ctx.settings)
    except OSError as exc:  # the command that needs the folder says so in its own words
        log.warning("Could not create the console's folders: %s", exc)


def _terminal_progress(as_json: bool) -> Callable[[Progress], None]:
    """Progress on stderr, one line per table (stdout stays clean for --json)."""
    seen: set[str] = set()

    def report(p: Progress) -> None:
        if p.waiting:
            if "waiting" not in seen:  # once per wait, not once a second
                seen.add("waiting")
                print(f"  {p.waiting}", file=sys.stderr)
            return
        seen.discard("waiting")
        if p.table not in seen:
            seen.add(p.table)
            print(f"  [{p.table_index + 1}/{p.table_count}] {p.table} "
                  f"({wording.rows_line(p)} done)", file=sys.stderr)
    return report


def cmd_backup(ctx: Context, args: argparse.Namespace) -> Outcome:
    """Today's backup. A backup that another workstation is making right now is not a
    failure: exit 0 with that sentence, "status": "running_elsewhere" in --json."""
    site, session, org = _authorized(ctx, args)
    try:
        result = run_backup(site, org, Actor.of(session), _folder(ctx, args), trigger="cli",
                            force=args.force, fmt=args.format,
                            progress=_terminal_progress(ctx.json))
        status = "skipped" if result.skipped else "done"
        # After run_backup has returned: the local slot is in place whatever happens here.
        offsite = None if result.skipped else usecases.send_offsite(
            site, ctx.settings, org, Actor.of(session), result, trigger="cli")
    except AlreadyRunning as exc:
        result = BackupResult(True, str(exc), skipped=True, format=args.format)
        status, offsite = "running_elsewhere", None
    finally:
        site.engine.dispose()
    outcome = Outcome(result.to_dict(), status=status)
    if offsite is not None:  # the local backup stands whatever happened off-site
        outcome["offsite"] = offsite.to_dict()
        outcome["message"] += " " + offsite.message()
    return outcome


def cmd_scope(ctx: Context, args: argparse.Namespace) -> Outcome:
    """Every table of the database and what a backup does with it, for a support engineer
    to review before the first backup of a schema."""
    engine = _open_database(ctx, args, console_tables=False)
    try:
        report = usecases.ownership_report(_site(ctx, args, engine), args.org)
    finally:
        engine.dispose()
    width = max((len(line.table) for line in report.lines), default=0)
    text = [f"{line.table:<{width}}  {line.status:<13}"
            + (f" {line.rows:>9,} {'row ' if line.rows == 1 else 'rows'}  "
               if line.rows is not None else " ") + line.how
            for line in report.lines]
    left_out = report.left_out
    text.append(f"{wording.plural(len(report.backed_up), 'table')} backed up; "
                + (f"{wording.plural(len(left_out), 'table')} left out: "
                   + ", ".join(line.table for line in left_out) + "."
                   if left_out else "no table left out."))
    text += [f"Warning: {sentence}." for sentence in report.stranded]
    if report.console_apart:
        text.append(report.console_apart)
    org = report.organization
    return Outcome(ok=True, message="\n".join(text), stranded=report.stranded,
                   console_schema=report.console_schema,
                   organization={"id": org.id, "code": org.code, "name": org.name}
                   if org else None,
                   tables=[line.to_dict() for line in report.lines],
                   left_out=[line.table for line in left_out])


def cmd_list(ctx: Context, args: argparse.Namespace) -> Outcome:
    """The seven weekday slots and the recent activity: the window's overview, as text."""
    engine = _open_database(ctx, args)
    folder = _folder(ctx, args)
    try:
        overview = usecases.load_overview(_site(ctx, args, engine), args.org, folder,
                                          limit=args.limit)
    finally:
        engine.dispose()
    org, days, entries = overview.organization, overview.days, overview.history
    partial = {d.weekday: overview.partial_by_file.get(d.path, "") if d.path and d.size
               else "" for d in days}
    lines = [f"Backups of {org.label} in {folder.resolve()}:"]
    for day in days:
        size = f"  {wording.human_size(day.size)}" if day.size else ""
        today = "  <- today" if day.is_today else ""
        scope = f" ({partial[day.weekday]})" if partial[day.weekday] else ""
        lines.append(f"  {day.label:<10} {day.summary}{scope}{size}{today}"
                     f"{f'  (in {day.elsewhere})' if day.elsewhere else ''}")
    lines.append("Recent activity:" if entries else "No activity recorded yet.")
    for e in entries:
        rows = f"  {wording.plural(e.rows, 'row')}" if e.rows is not None else ""
        lines.append(f"  {wording.date_time(e.occurred_at)}  {e.action:<9} {e.outcome:<9} "
                     f"{e.username or '-':<14} {e.trigger or '-':<11}{rows}  "
                     f"{e.message or ''}".rstrip())
    slots = [{"weekday": d.weekday, "today": d.is_today, "state": d.state,
              "date": d.backup_date, "size": d.size, "file": d.filename, "path": d.path,
              "error": d.error, "copy_kept": d.copy_kept,
              "copy_made": d.copy_made.isoformat(timespec="minutes") if d.copy_made else None,
              "later_failure": d.later_failure, "partial": partial[d.weekday]} for d in days]
    audit = [dict(e.__dict__) for e in entries]
    return Outcome(ok=True, message="\n".join(lines), organization={
        "id": org.id, "code": org.code, "name": org.name}, folder=str(folder), slots=slots,
        audit=audit)


def cmd_verify(ctx: Context, args: argparse.Namespace) -> Outcome:
    """Check a backup file. With --db the database's key tells whether it was changed, and
    an encrypted one is opened with the key of any of its organizations this workstation
    holds; without --db an encrypted backup cannot be opened (no organization is known)."""
    path = Path(args.archive)
    if not (args.db or args.profile):
        return Outcome(verify_archive(path).to_dict())
    engine = _open_database(ctx, args)
    try:
        key = usecases.database_key(engine)
        org_ids = [org.id for org in usecases.organizations(_site(ctx, args, engine))]
        report = verify_archive(path, key, org_ids, lambda: usecases.written_as(engine, path))
    finally:
        engine.dispose()
    return Outcome(report.to_dict())


def cmd_restore(ctx: Context, args: argparse.Namespace) -> Outcome:
    """Check a backup, show what would change, ask (unless --yes), restore all or nothing."""
    if not args.yes and not _interactive():
        raise UsageError("No terminal to confirm the restore; add --yes to restore without "
                         "being asked.")
    site, session, org = _authorized(ctx, args)
    try:
        plan = check_restore(site, org, Path(args.archive),
                             restorer=Actor.of(session),
                             accept_dropped=args.accept_dropped_columns)
        if plan.ok:
            print(preview_text(plan, org), file=sys.stderr if ctx.json else sys.stdout)
            if plan.changes_nothing:  # no question, no restore point, no transaction
                args.yes = True
            if not args.yes:
                print(f"Restore {org.label} from {plan.archive_path.name}? Type yes to go on: ",
                      end="", file=sys.stderr, flush=True)
                if sys.stdin.readline().strip().lower() not in ("yes", "y"):
                    # Declining is a choice, not a failure: exit 0, nothing changed.
                    return Outcome(ok=True, restored=False, message="Nothing was restored.",
                                   tables={}, rows=0, preview=plan.to_dict()["preview"])
        # A refused plan is recorded in the audit and raised (exit 1) by apply_restore.
        if plan.nothing_to_save:  # the organization has no rows here: none to save first
            print("Restoring (there is no data to save as a restore point first):",
                  file=sys.stderr)
        elif plan.ok and not plan.changes_nothing:
            print("Saving the data as it is now as a restore point, then restoring:",
                  file=sys.stderr)
        result = apply_restore(site, org, plan,
                               Actor.of(session), _folder(ctx, args),
                               restore_points_kept=ctx.settings.restore_points_kept,
                               progress=_terminal_progress(ctx.json), trigger="cli")
    finally:
        site.engine.dispose()
    outcome = Outcome(**result.to_dict(), preview=plan.to_dict()["preview"],
                      warnings=plan.warnings, dropped=plan.dropped, restored=True)
    if result.restore_point is not None:  # support needs the whole path, not only its name
        outcome["message"] += f"\nRestore point: {result.restore_point.resolve()}"
    return outcome


def cmd_offsite(ctx: Context, args: argparse.Namespace) -> Outcome:
    """`offsite set|status|push|pull|off`: the organization's copies outside the building."""
    site, session, org = _authorized(ctx, args)
    try:
        return _OFFSITE_ACTIONS[args.action](ctx, args, site, org, Actor.of(session))
    finally:
        site.engine.dispose()


def _offsite_set(ctx: Context, args: argparse.Namespace, site: Site, org: Organization,
                 actor: Actor) -> Outcome:
    remote = usecases.set_offsite_remote(site, ctx.paths, ctx.settings, org, actor,
                                         args.remote, test=not args.no_test, trigger="cli")
    checked = "" if args.no_test else " (a test file was written, read back and deleted)"
    return Outcome(ok=True, message=f"Off-site copies of {org.label} go to {remote.address}"
                   f"{checked}.", remote=remote.address,
                   secrets_in_keyring=list(remote.secret_names))


def _offsite_status(ctx: Context, args: argparse.Namespace, site: Site, org: Organization,
                    actor: Actor) -> Outcome:
    remote = oq.configured_remote(ctx.settings, org.id)
    days = oq.week_state(site.engine, org.id)
    last = oq.last_copied(days)
    lines = [f"Off-site copies of {org.label}: "
             + (f"to {remote.address}" if remote else "off (set a remote with `offsite set`)")]
    months = months_kept(ctx.settings, org.id)
    lines.append(f"Monthly copies: the last backup of each month, kept "
                 f"{wording.plural(months, 'month')}" if months else "Monthly copies: none")
    for day in days:
        lines.append(f"  {day.weekday.title():<10} {_offsite_summary(day)}")
    stored, unreadable = _remote_copies(ctx, org) if remote else ({}, None)
    if remote:
        lines.append(f"On the remote: {unreadable}" if unreadable else
                     "On the remote: " + ("nothing yet" if not stored else ""))
        for day, f in stored.items():
            lines.append(f"  {day.title():<10} {f['modified']}  {wording.human_size(f['size'])}")
    return Outcome(ok=True, message="\n".join(lines),
                   remote=remote.address if remote else None,
                   last_copied=last.isoformat(sep=" ", timespec="seconds") if last else None,
                   days=[d.to_dict() for d in days], stored=stored,
                   stored_error=unreadable, monthly_months=months)


def _remote_copies(ctx: Context, org: Organization) -> tuple[dict, str | None]:
    """The weekday copies the remote holds (what `pull` can fetch), or why it cannot say."""
    try:
        rc = oq.rclone_for(ctx.settings, org.id)
        found = oq.remote_days(rc, org, lambda day: slot_filename(org, day))
    except OffsiteError as exc:
        return {}, str(exc)
    return {day: {"name": f.name, "size": f.size, "modified": f.modified[:19].replace("T", " ")}
            for day, f in found.items()}, None


def _offsite_summary(day: oq.OffsiteDay) -> str:
    if day.status == "copied":
        return f"copied at {wording.date_time(day.copied_at)}"
    if day.status == "failed":
        return f"pending (failed {day.attempts}x: {day.error})"
    return day.status or "-"


def _offsite_push(ctx: Context, args: argparse.Namespace, site: Site, org: Organization,
                  actor: Actor) -> Outcome:
    report = usecases.push_offsite(site, ctx.settings, org, actor, trigger="cli")
    return Outcome(report.to_dict())


def _offsite_pull(ctx: Context, args: argparse.Namespace, site: Site, org: Organization,
                  actor: Actor) -> Outcome:
    folder = Path(args.dir) if args.dir else _folder(ctx, args) / "from-offsite"
    copy = usecases.fetch_offsite(site, ctx.settings, org, actor, args.day, folder,
                                  trigger="cli")
    return Outcome(ok=True, message=copy.message, path=str(copy.path), size=copy.size)


def _offsite_off(ctx: Context, args: argparse.Namespace, site: Site, org: Organization,
                 actor: Actor) -> Outcome:
    was_on = usecases.turn_offsite_off(site, ctx.paths, ctx.settings, org, actor,
                                       trigger="cli")
    message = (f"Off-site copies of {org.label} are off; the remote's keys were removed "
               "from this computer (the copies already off-site stay there)." if was_on
               else f"Off-site copies of {org.label} were already off.")
    return Outcome(ok=True, message=message)


def _offsite_monthly(ctx: Context, args: argparse.Namespace, site: Site, org: Organization,
                     actor: Actor) -> Outcome:
    months = usecases.set_monthly_copies(site, ctx.paths, ctx.settings, org, actor,
                                         args.months, trigger="cli")
    message = (f"The last backup of each month of {org.label} is kept off-site for "
               f"{wording.plural(months, 'month')}; the copies of months that ended are made "
               "at the next push or backup." if months else
               f"No monthly copies of {org.label} are kept off-site any more (those already "
               "there stay until removed by hand).")
    return Outcome(ok=True, message=message, monthly_months=months)


def cmd_encryption(ctx: Context, args: argparse.Namespace) -> Outcome:
    """`encryption on|off|status`: the organization's backups encrypted at rest."""
    site, session, org = _authorized(ctx, args)
    try:
        if args.action == "status":
            return Outcome(usecases.encryption_status(site, org).to_dict())
        if args.action == "off":
            return _encryption_off(site, session, org)
        return _encryption_on(args, site, session, org)
    finally:
        site.engine.dispose()


def _encryption_on(args: argparse.Namespace, site: Site, session: Session,
                   org: Organization) -> Outcome:
    # --recipient replaces support's keys, --no-recipients clears them, neither keeps them.
    extras = [] if args.no_recipients else args.recipient
    turned = usecases.turn_encryption_on(site, session, org, extras, trigger="cli")
    keys = ", ".join(turned.setting.fingerprints())
    outcome = Outcome(ok=True, enabled=True, created=turned.created,
                      fingerprints=turned.setting.fingerprints(),
                      message=f"Backups of {org.label} are encrypted from now on, for the keys "
                              f"{keys}.")
    if not turned.created:
        outcome["message"] += (" The key already on this workstation is used; `desktop-backup "
                               "key export` writes its recovery sheet again.")
        return outcome
    if args.recovery_file:
        write_private_text(Path(args.recovery_file), turned.sheet)
        outcome["recovery_file"] = str(Path(args.recovery_file).resolve())
        outcome["message"] += (f" The recovery sheet is in {outcome['recovery_file']} (only "
                               "you can read it): print it or save it now; without it an "
                               "encrypted backup cannot be opened.")
        return outcome
    print(turned.sheet, file=sys.stderr if args.json else sys.stdout)
    print("Print or save this now; without it an encrypted backup cannot be opened.",
          file=sys.stderr)
    if _interactive():
        _ask_retype(site, session, org)
    return outcome


def _ask_retype(site: Site, session: Session, org: Organization) -> None:
    """The proof the sheet was kept: the key's last characters, typed back from it (recorded,
    so the window stops warning that the sheet was never confirmed)."""
    for _attempt in range(3):
        print(f"Type the last {RETYPE_CHARS} characters of the key from the sheet: ", end="",
              file=sys.stderr, flush=True)
        if usecases.confirm_sheet(site, session, org, sys.stdin.readline()):
            print("Thank you: the recovery sheet was kept.", file=sys.stderr)
            return
        print("That is not what the sheet says.", file=sys.stderr)
    print("The sheet was not confirmed; write it again with `desktop-backup key export` and "
          "keep it safe.", file=sys.stderr)


def _encryption_off(site: Site, session: Session, org: Organization) -> Outcome:
    if _interactive():
        print(f"New backups of {org.label} will be written in clear (encrypted ones stay "
              "readable with the key). Type yes to go on: ", end="", file=sys.stderr,
              flush=True)
        if sys.stdin.readline().strip().lower() not in ("yes", "y"):
            return Outcome(ok=True, enabled=True, message="Encryption stays on.")
    was_on = usecases.turn_encryption_off(site, session, org, trigger="cli")
    message = (f"Backups of {org.label} are written in clear from now on; the encrypted ones "
               "still need the organization's key." if was_on
               else f"Encryption of {org.label}'s backups was already off.")
    return Outcome(ok=True, enabled=False, message=message)


def cmd_key(ctx: Context, args: argparse.Namespace) -> Outcome:
    """`key import FILE | key export --out FILE`: the organization's key on this workstation,
    from or to a recovery sheet. --db (or --profile) names the database that knows --org."""
    engine = _open_database(ctx, args)
    try:
        site = _site(ctx, args, engine)
        org = usecases.organization(site, args.org)
        if args.action == "import":
            try:
                text = Path(args.file).read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                raise DesktopBackupError(f"The recovery sheet {args.file} cannot be read "
                                         f"({exc.strerror or exc}).") from exc
            added = usecases.import_key(org, text, site, trigger="cli")
            return Outcome(ok=True, imported=added, message=(
                f"{org.label}'s key is now on this workstation: its encrypted backups can be "
                "opened here." if added else f"{org.label}'s key was already here."))
        path = usecases.export_key(site, org, Path(args.out), trigger="cli")
        return Outcome(ok=True, path=str(path.resolve()), message=(
            f"The recovery sheet of {org.label} is in {path.resolve()} (only you can read "
            "it): print it or keep it as safe as the backups."))
    finally:
        engine.dispose()


_OFFSITE_ACTIONS = {"set": _offsite_set, "status": _offsite_status, "push": _offsite_push,
                    "pull": _offsite_pull, "off": _offsite_off, "monthly": _offsite_monthly}


def cmd_gui(ctx: Context, args: argparse.Namespace) -> Outcome:
    """`desktop-backup [gui] [--db URL]`: the console window, as the entry module gave it."""
    if ctx.window is None:
        raise DesktopBackupError("The console window cannot start from here; run "
                                 "desktop-backup (or python -m desktop_backup) for it. The "
                                 "command line still works.")
    if sys.platform.startswith("linux") and not getattr(args, "probed", False):
        # A Qt platform that cannot load aborts the process inside Qt; say why instead.
        probe = probe_platform()
        if not probe.ok:
            raise DesktopBackupError(probe.sentence())
    db_url = getattr(args, "db", None) or getattr(args, "gui_db", None)
    status = ctx.window.run(ctx.paths, ctx.settings, db_url)
    return Outcome(ok=status == 0, message="")


def cmd_run_demo(ctx: Context, args: argparse.Namespace) -> Outcome:
    """`make run`: the demo database, then the window; without a display, the same job
    headless (log in as the demo admin, the day's backup, a screenshot of the window)."""
    demo = cmd_demo(ctx, argparse.Namespace(path=None))
    print(demo["message"])
    if display_available():
        probe = probe_platform()
        if probe.ok:
            print("\nOpening the console window on the demo database.")
            return cmd_gui(ctx, argparse.Namespace(db=demo["url"], probed=True))
        log.warning("run-demo: %s", probe.error)
        print(f"\n{probe.sentence()} Meanwhile the same job runs headless, with a "
              "screenshot of the window:")
    else:
        print("\nNo display here, so no window: running the day's backup headless and "
              "saving a screenshot of the window instead.")
    if ctx.window is None:
        raise DesktopBackupError("No window was handed to the command line, so no "
                                 "screenshot can be drawn; run desktop-backup run-demo.")
    login = usecases.login(ctx.paths, ctx.settings, demo["url"], None, None, "medp.admin",
                           DEMO_PASSWORD, LoginThrottle(ctx.paths.login_throttle_file))
    session = login.session
    try:
        assert session.organization is not None
        print(f"\nLogged in as {session.username}; running the day's backup of "
              f"{session.organization.name}:")
        result = run_backup(Site(login.engine, ctx.settings.mapping), session.organization,
                            Actor.of(session), ctx.settings.backup_folder(ctx.paths),
                            trigger="login", progress=_terminal_progress(False))
        shot = ctx.window.screenshot(ctx.paths, ctx.settings, login.engine, session)
    finally:
        login.engine.dispose()
    outcome = Outcome(result.to_dict())
    outcome["screenshot"] = str(shot)
    outcome["message"] = f"{result.message}\nScreenshot of the main window: {shot}"
    return outcome


def _add_db_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL", help=DB_HELP)
    p.add_argument("--profile", metavar="NAME", help="a saved connection profile instead of --db")
    p.add_argument("--tenant-table", help="the tenant table (default: organizations)")
    p.add_argument("--tenant-column", help="the tenant column (default: organization_id)")
    p.add_argument("--ownership", metavar="FILE",
                   help="a JSON file declaring which tables belong to an organization and how "
                        "(wins over the settings' \"ownership\" for the tables it names)")
    p.add_argument(CLI_FLAG, action="store_true",
                   help="allow the console to add its own tables to a database that is not "
                        "the billing app's (it has no auto_backup_logs)")
    p.add_argument("--console-schema", metavar="NAME", help=CONSOLE_SCHEMA_HELP)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="desktop-backup",
        description="Daily organization backups of the billing database, and safe restores.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--db", metavar="URL", dest="gui_db",
                        help="open the console on this database (skips the profile picker)")
    parser.add_argument("--self-check", action="store_true",
                        help="check this installation end to end (Qt, keyring, backup, "
                             "verify, restore on a demo database) and exit")
    # Used by the self-check and `make run`: can Qt's window platform start? (qtplatform.py)
    parser.add_argument("--qt-probe", action="store_true", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command")
    parser.set_defaults(handler=cmd_gui, command="gui")  # no subcommand: the window

    gui = sub.add_parser("gui", help="open the console window (the default)")
    gui.add_argument("--db", metavar="URL",
                     help="SQLAlchemy URL of the billing database; skips the profile picker")
    gui.set_defaults(handler=cmd_gui)

    demo = sub.add_parser("demo", help="create the demo SQLite billing database")
    demo.add_argument("--path", help="where to create it (default: in the data folder)")
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    demo.set_defaults(handler=cmd_demo)

    backup = sub.add_parser("backup", help="make today's backup of an organization")
    _add_db_options(backup)
    backup.add_argument("--org", required=True, help="organization id or code")
    backup.add_argument("--user", required=True, help="admin, owner or super admin username")
    backup.add_argument("--dir", help="backup folder (default: from the settings)")
    backup.add_argument("--force", action="store_true",
                        help="back up even when today's backup already succeeded")
    backup.add_argument("--format", choices=("native", "seed"), default="native",
                        help="seed writes the web app's JSON layout")
    backup.add_argument("--json", action="store_true", help="print one JSON object")
    backup.set_defaults(handler=cmd_backup)

    listing = sub.add_parser("list", help="show the seven weekday slots and recent activity")
    _add_db_options(listing)
    listing.add_argument("--org", required=True, help="organization id or code")
    listing.add_argument("--dir", help="backup folder (default: from the settings)")
    listing.add_argument("--limit", type=int, default=20, help="how many audit entries")
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    listing.set_defaults(handler=cmd_list)

    verify = sub.add_parser("verify", help="check a backup file completely")
    verify.add_argument("archive", help="the backup .zip")
    verify.add_argument("--db", metavar="URL", help="the billing database whose console wrote "
                        "the backup: also check that the file is unchanged since")
    verify.add_argument("--profile", metavar="NAME", help="a saved connection profile "
                        "instead of --db")
    verify.add_argument("--console-schema", metavar="NAME", help=CONSOLE_SCHEMA_HELP)
    verify.add_argument("--json", action="store_true", help="print one JSON object")
    verify.set_defaults(handler=cmd_verify)

    restore = sub.add_parser("restore", help="restore an organization from a backup: checked, "
                             "previewed, all or nothing, and undoable")
    restore.add_argument("archive", help="the backup .zip (a weekday slot, a restore point, or "
                         "the web app's backup)")
    _add_db_options(restore)
    restore.add_argument("--org", required=True, help="organization id or code")
    restore.add_argument("--user", required=True, help="admin, owner or super admin username")
    restore.add_argument("--dir", help="backup folder; the restore point is saved in its "
                         "restore-points folder (default: from the settings)")
    restore.add_argument("--yes", action="store_true", help="restore without asking")
    restore.add_argument("--accept-dropped-columns", action="store_true",
                         help="restore even though tables or columns in the backup no longer "
                         "exist (their data is lost)")
    restore.add_argument("--json", action="store_true", help="print one JSON object")
    restore.set_defaults(handler=cmd_restore)

    scope = sub.add_parser("scope", help="the ownership map a backup would use: every table, "
                           "backed up (and how), shared or left out (and why)")
    _add_db_options(scope)
    scope.add_argument("--org", help="organization id or code: also count its rows")
    scope.add_argument("--json", action="store_true", help="print one JSON object")
    scope.set_defaults(handler=cmd_scope)

    _add_offsite_parser(sub)
    _add_encryption_parsers(sub)

    run_demo = sub.add_parser("run-demo", help="what `make run` does")
    run_demo.set_defaults(handler=cmd_run_demo)
    return parser


def _add_offsite_parser(sub) -> None:
    offsite = sub.add_parser("offsite", help="copies outside the building, through rclone")
    actions = offsite.add_subparsers(dest="action", required=True)
    helps = {"set": "send copies to this remote (an rclone remote path, connection string "
                    "or folder); its keys go to the keyring",
             "status": "each weekday's off-site state",
             "push": "send what is waiting, now",
             "pull": "fetch a day's copy from off-site, checked",
             "off": "stop sending copies; forget the remote's keys",
             "monthly": "also keep the last backup of each month off-site for MONTHS months "
                        "(0: none, the default)"}
    for name, text in helps.items():
        p = actions.add_parser(name, help=text)
        if name == "set":
            p.add_argument("remote", help=":s3,provider=Minio,endpoint=...,access_key_id=...,"
                           "secret_access_key=...:bucket/shop, :sftp,..., :webdav,..., "
                           "remote:path of rclone.conf, or a folder")
            p.add_argument("--no-test", action="store_true",
                           help="keep the remote without writing a test file first")
        if name == "monthly":
            p.add_argument("months", type=int, help="months of monthly copies to keep")
        if name == "pull":
            p.add_argument("--day", required=True, choices=WEEKDAYS, type=str.lower)
            p.add_argument("--dir", help="where to put it (default: from-offsite in the "
                           "backup folder)")
        _add_db_options(p)
        p.add_argument("--org", required=True, help="organization id or code")
        p.add_argument("--user", required=True, help="admin, owner or super admin username")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.set_defaults(handler=cmd_offsite)


def _add_encryption_parsers(sub) -> None:
    encryption = sub.add_parser("encryption", help="encrypt the organization's backups at rest")
    actions = encryption.add_subparsers(dest="action", required=True)
    helps = {"on": "encrypt new backups (makes the key and its recovery sheet if needed)",
             "off": "write new backups in clear (encrypted ones stay readable with the key)",
             "status": "on or off, for which keys, and whether this workstation holds the key"}
    for name, text in helps.items():
        p = actions.add_parser(name, help=text)
        _add_db_options(p)
        p.add_argument("--org", required=True, help="organization id or code")
        p.add_argument("--user", required=True, help="admin, owner or super admin username")
        if name == "on":
            p.add_argument("--recovery-file", metavar="FILE",
                           help="write the recovery sheet to this file (owner-only) instead "
                                "of printing it")
            extras = p.add_mutually_exclusive_group()
            extras.add_argument("--recipient", metavar="AGE_PUBLIC_KEY", action="append",
                                help="also encrypt for this age public key (support); "
                                     "repeatable; replaces those set before (without it "
                                     "they are kept)")
            extras.add_argument("--no-recipients", action="store_true",
                                help="encrypt for the organization's own key only (removes "
                                     "support's keys set before)")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.set_defaults(handler=cmd_encryption)

    key = sub.add_parser("key", help="the organization's encryption key on this workstation")
    actions = key.add_subparsers(dest="action", required=True)
    imp = actions.add_parser("import", help="keep the key of a recovery sheet in the keyring")
    imp.add_argument("file", help="the recovery sheet (its text file)")
    exp = actions.add_parser("export", help="write a new recovery sheet of the key held here")
    exp.add_argument("--out", required=True, metavar="FILE", help="where to write it")
    for p in (imp, exp):
        _add_db_options(p)
        p.add_argument("--org", required=True, help="organization id or code")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.set_defaults(handler=cmd_key)


def _emit(outcome: Outcome, as_json: bool) -> None:
    """The result: JSON on stdout with --json; a failure's sentence always on stderr."""
    failed = not outcome.get("ok", True)
    if as_json:
        print(json.dumps(outcome, default=str))
    if failed and outcome["message"]:
        print(f"desktop-backup: {outcome['message']}", file=sys.stderr)
    elif not as_json and outcome["message"]:
        print(outcome["message"])


def _quiet_broken_pipe() -> None:
    """`desktop-backup list | head -4`: the reader left; point stdout at nothing so the
    interpreter's final flush does not print a traceback either."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None, paths: AppPaths | None = None,
         window: Window | None = None) -> int:
    """Run one command; the exit status. `window` is what launcher.main hands in."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.self_check:
        return self_check(window)
    if args.qt_probe:
        return window.qt_probe() if window is not None else 1
    handler: Callable | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    as_json = bool(getattr(args, "json", False))
    try:
        paths = paths or AppPaths.default()
        setup_logging(paths)
        log.info("desktop-backup %s %s", args.command, _loggable(args))
        ctx = Context(paths=paths, settings=load_settings(paths), json=as_json, window=window)
        warn_url_password(getattr(args, "db", None) or getattr(args, "gui_db", None))
        _prepare_own_folders(ctx)
        sweep_leftovers(ctx.settings.backup_folder(ctx.paths))
        outcome = handler(ctx, args)
    except UsageError as exc:
        _fail(str(exc), as_json)
        return 2
    except DesktopBackupError as exc:
        log.warning("%s failed: %s", args.command, exc, exc_info=exc)
        _fail(str(exc), as_json)
        return 1
    except KeyboardInterrupt:
        _fail("Stopped by the user; nothing was changed.", as_json)
        return 1
    try:
        _emit(outcome, as_json)
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_broken_pipe()
    return 0 if outcome.get("ok", True) else 1


def self_check(window: Window | None = None) -> int:
    """`--self-check`: one line per step and a verdict; 0 only when every step passed."""
    def no_window() -> Step:
        return Step("Qt window toolkit", FAIL, "no window was handed to the command line")

    return 0 if run_self_check(window.qt_step if window is not None else no_window).ok else 1


def _loggable(args: argparse.Namespace) -> str:
    """The command's options for the log (URLs are redacted by the log's filter)."""
    return " ".join(f"{k}={redact_remote(v) if k == 'remote' else v}"
                    for k, v in sorted(vars(args).items())
                    if k != "handler" and v not in (None, False))


def _fail(message: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"ok": False, "message": message}))
    print(f"desktop-backup: {message}", file=sys.stderr)
