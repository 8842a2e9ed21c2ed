"""Encryption at rest turned on, off and reported, and the organization's key brought to or
written from this workstation: each change checked against who asks and audited."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pyrage import x25519
from sqlalchemy.exc import SQLAlchemyError

from desktop_backup.audit import audit_entry, write_audit
from desktop_backup.auth import Session, authorize
from desktop_backup.authenticity import database_identity
from desktop_backup.config import write_private_text
from desktop_backup.db import friendly_error
from desktop_backup.encryption import KeyMissing, open_decrypted
from desktop_backup.encryption_setting import (
    EncryptionSetting,
    SheetConfirmed,
    read_encryption,
    read_sheet_confirmed,
    save_encryption,
    save_sheet_confirmed,
)
from desktop_backup.errors import DesktopBackupError, KeyringUnavailable, LoginRefused
from desktop_backup.organizations import Organization
from desktop_backup.orgkeys import (
    InvalidKey,
    ensure_org_key,
    fingerprint,
    import_org_key,
    load_org_key,
    parse_recipient,
    parse_recovery_text,
    recovery_sheet_text,
    retyped_correctly,
)
from desktop_backup.work import Actor, Site


@dataclass(frozen=True)
class EncryptionStatus:
    """What `encryption status` and the settings say."""

    organization: Organization
    enabled: bool
    public_key: str | None
    fingerprints: list[str]  # the organization's key first, then support's
    key_here: bool  # this workstation holds the organization's secret key
    changed_by: str | None
    changed_at: str | None
    extra_recipients: tuple[str, ...] = ()  # support's age1… keys, as stored
    sheet_confirmed: bool = False  # someone retyped the end of the current key's sheet
    keyring_problem: str | None = None  # why this workstation cannot keep or read the key

    @property
    def message(self) -> str:
        if not self.enabled:
            head = f"Encryption of {self.organization.label}'s backups is off."
            if self.public_key:
                head += (" Backups encrypted earlier still need the key with fingerprint "
                         f"{self.fingerprints[0]}.")
            return head
        keys = ", ".join(self.fingerprints)
        here = ("this workstation holds the key" if self.key_here else
                "this workstation does not hold the key (it still makes encrypted backups, "
                "but cannot open them until the recovery sheet is imported)")
        return (f"Encryption of {self.organization.label}'s backups is on, for the keys "
                f"{keys}; {here}.")

    def to_dict(self) -> dict:
        return {"ok": True, "message": self.message, "enabled": self.enabled,
                "public_key": self.public_key, "fingerprints": self.fingerprints,
                "key_here": self.key_here, "changed_by": self.changed_by,
                "changed_at": self.changed_at,
                "organization": {"id": self.organization.id, "code": self.organization.code,
                                 "name": self.organization.name}}


@dataclass(frozen=True)
class EncryptionOn:
    """Encryption turned on: the setting stored, and the recovery sheet when the key was
    made just now (shown once: print or save it now)."""

    setting: EncryptionSetting
    created: bool
    sheet: str


def _database(site: Site) -> str:
    try:
        return database_identity(site.engine)
    except SQLAlchemyError as exc:
        raise friendly_error(exc, site.engine.url) from exc


def _public_key(site: Site, org: Organization) -> str | None:
    stored = read_encryption(site.engine, org.id)
    return stored.public_key if stored is not None else None


def key_here(site: Site, org: Organization, stored: EncryptionSetting | None = None
             ) -> x25519.Identity | None:
    """This database's key of the organization on this workstation, or None. A key kept
    before keys were named by database is taken when it is the one the database encrypts
    with (`stored`, read when not given), and named from then on."""
    adopt = (stored or read_encryption(site.engine, org.id))
    return load_org_key(org.id, database=_database(site),
                        adopt=adopt.public_key if adopt is not None else None)


def encryption_status(site: Site, org: Organization) -> EncryptionStatus:
    """The setting, whether this workstation holds the key (a keyring that cannot be asked
    is said, not raised: the page must still show the setting) and whether the sheet was
    confirmed."""
    setting = read_encryption(site.engine, org.id)
    problem = None
    try:
        identity = key_here(site, org, setting)
    except KeyringUnavailable as exc:
        identity, problem = None, str(exc)
    if setting is None:
        return EncryptionStatus(org, False, None, [], identity is not None, None, None,
                                keyring_problem=problem)
    here = identity is not None and str(identity.to_public()) == setting.public_key
    changed = setting.changed_at.isoformat(sep=" ", timespec="minutes") \
        if setting.changed_at else None
    confirmed = read_sheet_confirmed(site.engine, org.id)
    return EncryptionStatus(org, setting.enabled, setting.public_key, setting.fingerprints(),
                            here, setting.changed_by, changed, setting.extra_recipients,
                            confirmed is not None and confirmed.public_key == setting.public_key,
                            problem)


def change_refused(session: Session, org: Organization | None) -> str | None:
    """Why `session` may not change `org`'s encryption (None: it may): only its admins and
    owners, or a super admin, may (the login already refuses everyone else)."""
    if org is None:
        return "Choose an organization in the window first."
    try:
        authorize(session, org)
    except LoginRefused as exc:
        return str(exc)
    return None


def turn_encryption_on(site: Site, session: Session, org: Organization,
                       extra_recipients: Sequence[str] | None = None, trigger: str = "manual"
                       ) -> EncryptionOn:
    """Encrypt the organization's backups from now on, for its key and `extra_recipients`
    (None keeps those already set: turning encryption on again must not silently drop
    support's key; an empty list clears them).

    Uses the key this workstation holds, or makes one (kept in the keyring; the sheet must
    then be kept). Refuses when the shop already encrypts with a key this workstation does
    not hold: a second key would leave half the backups unopenable with either sheet."""
    authorize(session, org)
    stored = read_encryption(site.engine, org.id)
    if extra_recipients is None:
        extra_recipients = stored.extra_recipients if stored is not None else ()
    extras = tuple(str(parse_recipient(text)) for text in extra_recipients)
    present = key_here(site, org, stored)
    if stored is not None and stored.enabled and (
            present is None or str(present.to_public()) != stored.public_key):
        raise DesktopBackupError(
            f"Encryption of {org.label}'s backups is already on with the key "
            f"{fingerprint(stored.public_key)}, which this workstation does not hold; import "
            "its recovery sheet first (desktop-backup key import FILE --org "
            f"{org.code or org.id}).")
    key = ensure_org_key(org.id, database=_database(site))
    now = site.clock()
    setting = EncryptionSetting(org.id, True, str(key.identity.to_public()), extras,
                                session.username, now)
    save_encryption(site.engine, setting, session.user_id)
    write_audit(site.engine, audit_entry(
        "encryption", org.id, session, trigger=trigger,
        message="Encryption turned on for the keys " + ", ".join(setting.fingerprints())
        + (" (a new key was made)." if key.created else ".")), now)
    return EncryptionOn(setting, key.created,
                        recovery_sheet_text(key.identity, org, now) if key.created else "")


def turn_encryption_off(site: Site, session: Session, org: Organization,
                        trigger: str = "manual") -> bool:
    """Write new backups in clear; True when encryption was on. Existing encrypted backups
    stay as they are, readable with the key."""
    authorize(session, org)
    stored = read_encryption(site.engine, org.id)
    if stored is None or not stored.enabled:
        return False
    now = site.clock()
    save_encryption(site.engine, EncryptionSetting(
        org.id, False, stored.public_key, stored.extra_recipients, session.username, now),
        session.user_id)
    write_audit(site.engine, audit_entry(
        "encryption", org.id, session, trigger=trigger,
        message="Encryption turned off; backups encrypted earlier still need the key "
                f"{fingerprint(stored.public_key)}."), now)
    return True


def set_extra_recipients(site: Site, session: Session, org: Organization,
                         recipients: Sequence[str], trigger: str = "manual") -> EncryptionSetting:
    """Encrypt new backups for these extra public keys (support's) besides the organization's
    own; backups already made keep the recipients they were made for. Audited."""
    authorize(session, org)
    stored = read_encryption(site.engine, org.id)
    if stored is None:
        raise DesktopBackupError(f"Turn encryption of {org.label}'s backups on first; then "
                                 "add the keys of those who may also open them.")
    extras = tuple(dict.fromkeys(str(parse_recipient(text)) for text in recipients))
    now = site.clock()
    setting = EncryptionSetting(org.id, stored.enabled, stored.public_key, extras,
                                session.username, now)
    save_encryption(site.engine, setting, session.user_id)
    write_audit(site.engine, audit_entry(
        "encryption", org.id, session, trigger=trigger,
        message="Extra recipients of new backups set to "
        + (", ".join(fingerprint(r) for r in extras) if extras else "none") + "."), now)
    return setting


def confirm_sheet(site: Site, actor: Actor | Session, org: Organization, typed: str) -> bool:
    """Record that the recovery sheet was kept when `typed` is the end of the key; the
    header's warning then ends on every workstation. False (nothing recorded) otherwise."""
    identity = key_here(site, org)
    if identity is None or not retyped_correctly(identity, typed):
        return False
    now = site.clock()
    public = str(identity.to_public())
    save_sheet_confirmed(site.engine, SheetConfirmed(org.id, public, actor.username, now))
    write_audit(site.engine, audit_entry(
        "encryption", org.id, actor, trigger="manual",
        message=f"Recovery sheet of the key {fingerprint(public)} confirmed as kept."), now)
    return True


def new_recovery_sheet(site: Site, session: Session, org: Organization) -> str:
    """The recovery sheet's text again, for an admin or owner whose workstation holds the key."""
    authorize(session, org)
    identity = key_here(site, org)
    if identity is None:
        raise InvalidKey(f"This workstation does not hold {org.label}'s encryption key, so "
                         "it cannot write its recovery sheet.")
    return recovery_sheet_text(identity, org, site.clock())


def import_key(org: Organization, text: str, site: Site | None = None,
               actor: Actor | Session | None = None, trigger: str = "manual") -> bool:
    """Keep the organization's key from a recovery sheet's text; False when it was here.
    With `site`, the import is audited (by `actor`, or nobody known on the command line)."""
    recovered = parse_recovery_text(text)
    recovered.check_organization(org)
    if site is None:  # no database known: kept for the organization, named by none
        return import_org_key(org.id, recovered.identity)
    added = import_org_key(org.id, recovered.identity, database=_database(site),
                           adopt=_public_key(site, org))
    public = fingerprint(recovered.identity.to_public())
    write_audit(site.engine, audit_entry(
        "encryption", org.id, actor, trigger=trigger,
        message=f"Recovery key {public} imported on this workstation." if added
        else f"Recovery key {public} imported again (it was already here)."), site.clock())
    return added


def export_key(site: Site, org: Organization, destination: Path,
               actor: Actor | Session | None = None, trigger: str = "manual") -> Path:
    """Write a new recovery sheet of the key this workstation holds (owner-only file);
    audited: a copy of the key left this workstation's keyring."""
    identity = key_here(site, org)
    if identity is None:
        raise InvalidKey(f"This workstation does not hold {org.label}'s encryption key, so "
                         "it cannot write its recovery sheet.")
    now = site.clock()
    write_private_text(destination, recovery_sheet_text(identity, org, now))
    write_audit(site.engine, audit_entry(
        "encryption", org.id, actor, trigger=trigger,
        message=f"Recovery sheet of the key {fingerprint(identity.to_public())} written "
                f"to {destination}."), now)
    return destination


def unlock_backup(site: Site, actor: Actor | Session, org: Organization, path: Path,
                  text: str) -> bool:
    """Keep the recovery key pasted or picked in the restore wizard, but only once it has
    opened `path`: a sheet of another key is refused in one sentence and nothing is kept
    (a wrong key in the keyring would be in the way of the right one). Audited as an import;
    False when the key was already here."""
    recovered = parse_recovery_text(text)
    recovered.check_organization(org)
    try:
        with open_decrypted(path, [recovered.identity]):
            pass  # decrypted whole: the key opens this very file
    except KeyMissing:
        raise InvalidKey(f"This recovery key does not open {path.name}: it is not the key "
                         "the backup was made with. Find the recovery sheet printed when "
                         "encryption was turned on.") from None
    return import_key(org, text, site, actor)
