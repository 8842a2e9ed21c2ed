"""Settings, connection profiles and the schema mapping.

Settings are data: a small dataclass loaded from and saved to one JSON file in the user's
config directory. Profiles hold a database URL *without* its password; the password lives in
the OS keyring (see :mod:`desktop_backup.keystore`). Where things live is an :class:`AppPaths`
value that callers pass in, so tests and the command line can point it anywhere.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import platformdirs
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from desktop_backup.errors import UsageError
from desktop_backup.ownership import Ownership, load_ownership_file

APP_NAME = "DesktopBackup"
HOME_ENV = "DESKTOP_BACKUP_HOME"


@dataclass(frozen=True)
class AppPaths:
    """The folders the console uses; one value, passed around rather than looked up."""

    config_dir: Path
    data_dir: Path
    log_dir: Path

    @classmethod
    def default(cls) -> AppPaths:
        """The OS's per-user folders, or one folder tree under $DESKTOP_BACKUP_HOME."""
        home = os.environ.get(HOME_ENV)
        if home:
            root = Path(home)
            return cls(root / "config", root / "data", root / "logs")
        return cls(
            Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
            Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
            Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
        )

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.json"

    @property
    def default_backup_dir(self) -> Path:
        return self.data_dir / "backups"

    @property
    def demo_database(self) -> Path:
        return self.data_dir / "demo" / "billing-demo.sqlite"

    @property
    def login_throttle_file(self) -> Path:
        return self.data_dir / "login-throttle.json"


@dataclass(frozen=True)
class SchemaMapping:
    """Names of the billing database's tenant and user tables and columns.

    The defaults match the Laravel billing database; a shop with a renamed schema changes
    them in the settings file or with --tenant-table / --tenant-column.
    """

    tenant_table: str = "organizations"
    tenant_column: str = "organization_id"
    tenant_id_column: str = "id"
    tenant_code_column: str = "code"
    tenant_name_column: str = "name"
    tenant_status_column: str = "status"
    auto_backup_enabled_column: str = "auto_backup_enabled"
    auto_backup_tables_column: str = "auto_backup_tables"
    users_table: str = "users"
    user_id_column: str = "user_id"
    username_column: str = "username"
    email_column: str = "email"
    password_column: str = "password"
    role_column: str = "role"
    owner_column: str = "is_organization_owner"
    active_column: str = "is_active"
    full_name_column: str = "full_name"
    admin_roles: tuple[str, ...] = ("admin", "super_admin")
    super_admin_role: str = "super_admin"
    # Declared ownership of the tables reflection cannot place (settings.json's "ownership",
    # beside "mapping"; empty for the billing database). See desktop_backup/ownership.py.
    ownership: Ownership = field(default_factory=Ownership)
    # Memberships through a table: users.<user_id_column> belongs to every tenant a row of
    # <membership_table> names, and users.<tenant_column> (if the table has one) is ignored.
    # Empty (the billing database): the user's tenant is users.<tenant_column>.
    membership_table: str = ""
    membership_user_column: str = "user_id"
    membership_tenant_column: str = "tenant_id"
    # Roles held elsewhere: <role_assignments_table>(user, role) -> <roles_table>(id, name,
    # scope), the scope being the tenant's id. A role named in admin_roles makes its holder an
    # admin of that one tenant; a super admin is only who holds <super_admin_role> with no
    # scope. Empty (the billing database): the role is users.<role_column>.
    role_assignments_table: str = ""
    role_assignment_user_column: str = "user_id"
    role_assignment_role_column: str = "role_id"
    roles_table: str = "roles"
    role_id_column: str = "id"
    role_name_column: str = "name"
    role_scope_column: str = "scope"

    @classmethod
    def from_dict(cls, data: dict) -> SchemaMapping:
        known = {f.name for f in fields(cls)} - {"ownership"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"The schema mapping has unknown keys: {', '.join(unknown)}.")
        values = dict(data)
        if "admin_roles" in values:
            values["admin_roles"] = tuple(values["admin_roles"])
        return cls(**values)


@dataclass(frozen=True)
class Profile:
    """A named connection to a billing database; the URL never holds the password."""

    name: str
    url: str

    def __post_init__(self) -> None:
        if url_password(self.url):
            raise UsageError(
                f"The profile '{self.name}' would keep a password in the settings file; "
                "give the address without the password and it will be kept in the keyring."
            )


@dataclass
class Settings:
    """Everything the user can change, as stored in settings.json."""

    profiles: dict[str, Profile] = field(default_factory=dict)
    last_profile: str | None = None
    remembered_username: str | None = None
    backup_dir: str | None = None
    restore_points_kept: int = 5
    auto_backup_on_login: bool = True
    schedule_time: str | None = None
    notify_on_success: bool = False
    theme: str = "system"
    # Off-site remote per organization id: the rclone address only; its secrets are in the
    # keyring (desktop_backup/offsite_queue.py).
    offsite_remotes: dict[str, str] = field(default_factory=dict)
    # The names (never the values) of the secret options each remote keeps in the keyring.
    offsite_key_names: dict[str, list[str]] = field(default_factory=dict)
    # Monthly copies off-site per organization id: how many months to keep (absent: none).
    offsite_monthly: dict[str, int] = field(default_factory=dict)
    mapping: SchemaMapping = field(default_factory=SchemaMapping)
    # In a database that is not the billing app's (no auto_backup_logs), the console adds its
    # own tables only when allowed: this setting, --create-console-tables, or the window's yes.
    create_console_tables: bool = False
    # Where the console keeps those tables: "" beside the billing tables (as always), or the
    # name of a schema (PostgreSQL), a database on the same server (MySQL/MariaDB), or a
    # file beside the billing file (SQLite: <billing stem>.<name>.sqlite); db.py.
    console_schema: str = ""

    def backup_folder(self, paths: AppPaths) -> Path:
        return Path(self.backup_dir) if self.backup_dir else paths.default_backup_dir

    def to_dict(self) -> dict:
        data = asdict(self)
        data["profiles"] = {name: asdict(p) for name, p in self.profiles.items()}
        data["mapping"] = {
            k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.mapping).items()
            if k != "ownership"
        }
        data["ownership"] = self.mapping.ownership.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Settings:
        values = {k: v for k, v in data.items() if k in {f.name for f in fields(cls)}}
        values["profiles"] = {
            name: Profile(name=name, url=p["url"]) for name, p in data.get("profiles", {}).items()
        }
        values["mapping"] = replace(SchemaMapping.from_dict(data.get("mapping", {})),
                                    ownership=Ownership.from_dict(data.get("ownership", {})))
        return cls(**values)


def prepare_own_folders(paths: AppPaths, settings: Settings) -> None:
    """Create the console's own folders when missing, owner-only (0700): its data folder and,
    unless the person chose another, the default backup folder in it.

    A fresh workstation must be able to restore (its restore point goes into the backup
    folder) before it has ever made a backup. A folder the person chose is never created
    here: a missing one usually means an unplugged drive, and the backup says so.
    """
    own = [paths.data_dir]
    if not settings.backup_dir:
        own.append(paths.default_backup_dir)
    for folder in own:
        _make_private(folder)


def _make_private(folder: Path) -> None:
    missing = []
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    for level in reversed(missing):
        try:
            level.mkdir(mode=0o700)
        except FileExistsError:
            continue  # another process made it just now
        try:
            os.chmod(level, 0o700)  # mkdir's mode is cut by the umask; say it exactly
        except OSError:
            pass  # a share or FAT drive keeps its own permissions


def load_settings(paths: AppPaths) -> Settings:
    """Read settings.json; a missing file means defaults, a damaged one is named plainly."""
    path = paths.settings_file
    if not path.exists():
        return Settings()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"The settings file {path} cannot be read ({exc.strerror}).") from exc
    try:
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("it does not hold a JSON object")
        return Settings.from_dict(data)
    except (ValueError, TypeError, KeyError, AttributeError, UsageError) as exc:
        raise UsageError(f"The settings file {path} is damaged ({exc}); fix or delete it.") from exc


def save_settings(paths: AppPaths, settings: Settings) -> None:
    """Write settings.json atomically and readable by the owner only."""
    write_private_text(paths.settings_file, json.dumps(settings.to_dict(), indent=2))


def write_private_text(path: Path, text: str) -> None:
    """Write a file atomically and readable by its owner only (the settings, a recovery
    sheet)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp") if path.suffix != ".json" \
        else path.with_suffix(".tmp")
    # Created owner-only from the first byte, not chmod-ed afterwards, so no other account can
    # open it in between; fsync so a power cut cannot leave an empty file behind os.replace.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(tmp, 0o600)  # in case a stale .tmp with wider permissions was reused
    os.replace(tmp, path)


def with_mapping_overrides(
    mapping: SchemaMapping, tenant_table: str | None, tenant_column: str | None,
    ownership_file: str | None = None,
) -> SchemaMapping:
    """Apply --tenant-table / --tenant-column / --ownership FILE from the command line (the
    file's declarations win over the settings' for the tables it names)."""
    changes: dict = {}
    if tenant_table:
        changes["tenant_table"] = tenant_table
    if tenant_column:
        changes["tenant_column"] = tenant_column
    if ownership_file:
        changes["ownership"] = load_ownership_file(Path(ownership_file)).over(mapping.ownership)
    return replace(mapping, **changes) if changes else mapping


def url_password(url: str) -> str | None:
    """The password inside an SQLAlchemy URL, if any."""
    try:
        return make_url(url).password
    except ArgumentError:
        return None


def url_database(url: str) -> str | None:
    """The database inside an SQLAlchemy URL (a SQLite file's path), if any."""
    try:
        return make_url(url).database
    except (ArgumentError, ValueError):  # not an address, or a port that is not a number
        return None


def strip_password(url: str) -> str:
    """The URL as it may be shown or stored: without its password."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise UsageError(
            f"'{url}' is not a database address (for example sqlite:///billing.db)."
        ) from exc
    # Not parsed.set(password=None): URL.set ignores None, so it would keep the password.
    bare = URL.create(
        parsed.drivername,
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=parsed.query,
    )
    return bare.render_as_string(hide_password=False)
