"""Encryption at rest turned on, off and reported, and the organization's key brought to or
written from this workstation: each change checked against who asks and audited."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from desktop_backup.audit import audit_entry, write_audit
from desktop_backup.auth import Session, authorize
from desktop_backup.config import write_private_text
from desktop_backup.encryption_setting import (
    EncryptionSetting,
    read_encryption,
    save_encryption,
)
from desktop_backup.errors import DesktopBackupError
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
from desktop_backup.work import Site


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


def encryption_status(site: Site, org: Organization) -> EncryptionStatus:
    setting = read_encryption(site.engine, org.id)
    identity = load_org_key(org.id)
    if setting is None:
        return EncryptionStatus(org, False, None, [], identity is not None, None, None)
    here = identity is not None and str(identity.to_public()) == setting.public_key
    changed = setting.changed_at.isoformat(sep=" ", timespec="minutes") \
        if setting.changed_at else None
    return EncryptionStatus(org, setting.enabled, setting.public_key, setting.fingerprints(),
                            here, setting.changed_by, changed)


def turn_encryption_on(site: Site, session: Session, org: Organization,
                       extra_recipients: Sequence[str] = (), trigger: str = "manual"
                       ) -> EncryptionOn:
    """Encrypt the organization's backups from now on, for its key and `extra_recipients`.

    Uses the key this workstation holds, or makes one (kept in the keyring; the sheet must
    then be kept). Refuses when the shop already encrypts with a key this workstation does
    not hold: a second key would leave half the backups unopenable with either sheet."""
    authorize(session, org)
    extras = tuple(str(parse_recipient(text)) for text in extra_recipients)
    stored = read_encryption(site.engine, org.id)
    present = load_org_key(org.id)
    if stored is not None and stored.enabled and (
            present is None or str(present.to_public()) != stored.public_key):
        raise DesktopBackupError(
            f"Encryption of {org.label}'s backups is already on with the key "
            f"{fingerprint(stored.public_key)}, which this workstation does not hold; import "
            "its recovery sheet first (desktop-backup key import FILE --org "
            f"{org.code or org.id}).")
    key = ensure_org_key(org.id)
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


def sheet_retyped(org: Organization, typed: str) -> bool:
    """Whether `typed` is the last characters of the key this workstation holds, as the
    recovery sheet shows them: the proof the sheet was kept."""
    identity = load_org_key(org.id)
    return identity is not None and retyped_correctly(identity, typed)


def import_key(org: Organization, text: str) -> bool:
    """Keep the organization's key from a recovery sheet's text; False when it was here."""
    recovered = parse_recovery_text(text)
    recovered.check_organization(org)
    return import_org_key(org.id, recovered.identity)


def export_key(site: Site, org: Organization, destination: Path) -> Path:
    """Write a new recovery sheet of the key this workstation holds (owner-only file)."""
    identity = load_org_key(org.id)
    if identity is None:
        raise InvalidKey(f"This workstation does not hold {org.label}'s encryption key, so "
                         "it cannot write its recovery sheet.")
    write_private_text(destination, recovery_sheet_text(identity, org, site.clock()))
    return destination
