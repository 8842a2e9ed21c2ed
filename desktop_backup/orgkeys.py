"""An organization's encryption key: made once, kept in the OS keyring, saved on a recovery sheet.

The key is an age X25519 identity (``AGE-SECRET-KEY-1…``). Its secret lives only in the
keyring (keystore.py: one entry per organization id, holding its key of each billing
database) and on the recovery sheet the owner prints; never in settings, files or logs.
Backups are encrypted for the organization's own public key plus any extra recipients (a
support company's age public key), so support can open a backup with its own identity.

A recipient's fingerprint, shown in manifests and the history, is the first 16 hex digits of
the SHA-256 of its canonical text (the lower-case ``age1…`` string as age prints it), grouped
by four: anyone can recompute it with ``printf %s age1… | sha256sum``.

The recovery sheet's text is itself an age identity file: every line but the key starts with
``#``, so support can run ``age -d -i sheet.txt`` on a backup without this program.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from keyring.backend import KeyringBackend
from pyrage import IdentityError, RecipientError, x25519

from desktop_backup.errors import DesktopBackupError
from desktop_backup.keystore import forget_org_key, get_org_key, set_org_key
from desktop_backup.organizations import Organization

RETYPE_CHARS = 6  # how many of the key's last characters the owner retypes from the sheet
_SECRET_KEY = re.compile(r"AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}")
_SHEET_ORG_ID = re.compile(r"^#\s*Organization id:\s*(\d+)\s*$", re.MULTILINE)


class InvalidKey(DesktopBackupError):
    """A key, recipient or recovery sheet that cannot be used."""


class KeyAlreadyPresent(DesktopBackupError):
    """The organization already has a different key on this workstation."""


# --- the organization's identity, in the keyring -----------------------------------------
#
# One keyring entry per organization id (keystore.org_key_name) holds that organization's key
# of every billing database this workstation works with, each named by the database's
# identity (authenticity.database_identity): two databases may both have an organization 1.
# The entry is the bare key when there is one key of no named database (as consoles before
# per-database keys wrote it), else JSON: {"keys": [{"database": id or null, "key": "AGE…"}]}.

@dataclass(frozen=True)
class HeldKey:
    """One key kept for an organization, and the database it belongs to (None: not known,
    as kept before keys were named by database)."""

    database: str | None
    identity: x25519.Identity


def _damaged() -> InvalidKey:
    return InvalidKey("The encryption key kept in this computer's password store is "
                      "damaged; import the recovery sheet again.")


def held_org_keys(org_id: int, *, backend: KeyringBackend | None = None) -> list[HeldKey]:
    """Every key this workstation keeps for organization `org_id`, of every database.
    KeyringUnavailable when the keyring cannot be asked; InvalidKey when its entry is damaged."""
    secret = get_org_key(org_id, backend=backend)
    if secret is None:
        return []
    text = secret.strip()
    try:
        if not text.startswith("{"):
            return [HeldKey(None, x25519.Identity.from_str(text))]
        return [HeldKey(item.get("database"), x25519.Identity.from_str(item["key"]))
                for item in json.loads(text)["keys"]]
    except (IdentityError, ValueError, KeyError, TypeError, AttributeError):
        raise _damaged() from None


def _keep(org_id: int, keys: list[HeldKey], backend: KeyringBackend | None) -> None:
    if not keys:
        forget_org_key(org_id, backend=backend)
    elif len(keys) == 1 and keys[0].database is None:
        set_org_key(org_id, str(keys[0].identity), backend=backend)
    else:
        set_org_key(org_id, json.dumps({"keys": [
            {"database": k.database, "key": str(k.identity)} for k in keys]}), backend=backend)


def load_org_key(org_id: int, *, database: str | None = None, adopt: str | None = None,
                 backend: KeyringBackend | None = None) -> x25519.Identity | None:
    """The organization's identity from this workstation's keyring, or None if it has none.

    With `database`, that database's key; a key kept before keys were named by database is
    taken (and named from then on) only when its public key is `adopt` (the one the database
    says it encrypts with), so another database's key is never taken for this one. Without
    `database`, the first key kept for the organization, of whichever database.
    KeyringUnavailable when the keyring cannot be asked; InvalidKey when its entry is damaged."""
    keys = held_org_keys(org_id, backend=backend)
    if database is None:
        return keys[0].identity if keys else None
    for held in keys:
        if held.database == database:
            return held.identity
    for held in keys:
        if held.database is None and adopt and str(held.identity.to_public()) == adopt:
            _keep(org_id, [HeldKey(database, held.identity) if k is held else k
                           for k in keys], backend)
            return held.identity
    return None


def create_org_key(org_id: int, *, database: str | None = None,
                   backend: KeyringBackend | None = None) -> x25519.Identity:
    """Make the organization's identity and keep it in the keyring (read back to be sure).

    Refuses when the organization already has one here: replacing it would leave every
    backup made with it unreadable (turning encryption on uses :func:`ensure_org_key`)."""
    if load_org_key(org_id, database=database, backend=backend) is not None:
        raise KeyAlreadyPresent("This organization already has an encryption key on this "
                                "workstation; replacing it would leave its backups unreadable.")
    identity = x25519.Identity.generate()
    _keep(org_id, [*held_org_keys(org_id, backend=backend), HeldKey(database, identity)],
          backend)
    return identity


@dataclass(frozen=True)
class OrgKey:
    """The key encryption uses, and whether it was made just now (then the recovery sheet
    must be shown, and confirmed, before anyone relies on it)."""

    identity: x25519.Identity
    created: bool


def ensure_org_key(org_id: int, *, database: str | None = None, adopt: str | None = None,
                   backend: KeyringBackend | None = None) -> OrgKey:
    """The organization's key for turning encryption on: the one this workstation keeps,
    or a new one (kept in the keyring) when it has none."""
    present = load_org_key(org_id, database=database, adopt=adopt, backend=backend)
    if present is not None:
        return OrgKey(present, created=False)
    return OrgKey(create_org_key(org_id, database=database, backend=backend), created=True)


def import_org_key(org_id: int, identity: x25519.Identity, *, replace: bool = False,
                   database: str | None = None, adopt: str | None = None,
                   backend: KeyringBackend | None = None) -> bool:
    """Keep an identity from a recovery sheet; False when this exact key was already here.

    A different key already present is only replaced with `replace` (its backups would need
    their own sheet from then on)."""
    present = load_org_key(org_id, database=database, adopt=adopt, backend=backend)
    if present is not None and str(present) == str(identity):
        return False
    if present is not None and not replace:
        raise KeyAlreadyPresent(
            "This workstation already has a different encryption key for this organization "
            f"(public key fingerprint {fingerprint(present.to_public())}); the recovery "
            "sheet was not imported, so backups made with that key stay readable.")
    others = [k for k in held_org_keys(org_id, backend=backend)
              if k.database != database and str(k.identity) != str(identity)]
    _keep(org_id, [*others, HeldKey(database, identity)], backend)
    return True


def delete_org_key(org_id: int, *, database: str | None = None,
                   backend: KeyringBackend | None = None) -> None:
    """Remove the organization's key of `database` from this workstation (every key of the
    organization without `database`); its recovery sheet still opens the backups made with it."""
    if database is None:
        forget_org_key(org_id, backend=backend)
        return
    _keep(org_id, [k for k in held_org_keys(org_id, backend=backend)
                   if k.database != database], backend)


# --- recipients and fingerprints ------------------------------------------------------------

def parse_recipient(text: str) -> x25519.Recipient:
    """An age public key (``age1…``) from settings or the command line; InvalidKey if not."""
    cleaned = text.strip()
    try:
        return x25519.Recipient.from_str(cleaned.lower())
    except RecipientError:
        raise InvalidKey(f"'{_shorten(cleaned)}' is not an age public key (it starts with "
                         "age1 and is 62 characters long).") from None


def recipients_for(identity: x25519.Identity, extra: Iterable[str] = ()
                   ) -> list[x25519.Recipient]:
    """Whom a backup is encrypted for: the organization's own key, then each extra public
    key once, in the order given (each validated)."""
    recipients = [identity.to_public()]
    seen = {str(recipients[0])}
    for text in extra:
        recipient = parse_recipient(text)
        if str(recipient) not in seen:
            seen.add(str(recipient))
            recipients.append(recipient)
    return recipients


def fingerprint(recipient: x25519.Recipient | str) -> str:
    """``xxxx-xxxx-xxxx-xxxx``: the first 16 hex digits of SHA-256 of the canonical
    ``age1…`` text (see the module's docstring)."""
    canonical = str(parse_recipient(recipient) if isinstance(recipient, str) else recipient)
    digest = hashlib.sha256(canonical.encode("ascii")).hexdigest()[:16]
    return "-".join(digest[i:i + 4] for i in range(0, 16, 4))


def _shorten(text: str) -> str:
    return text if len(text) <= 24 else text[:20] + "…"


# --- the recovery sheet --------------------------------------------------------------------

@dataclass(frozen=True)
class RecoveryKey:
    """What a recovery sheet (or a pasted key) gives back."""

    identity: x25519.Identity
    organization_id: int | None  # as written on the sheet; None for a bare pasted key

    def check_organization(self, org: Organization) -> None:
        """Refuse a sheet written for another organization."""
        if self.organization_id is not None and self.organization_id != org.id:
            raise InvalidKey(f"This recovery sheet belongs to organization "
                             f"{self.organization_id}, not to {org.name} ({org.id}); "
                             "it was not imported.")


def recovery_sheet_text(identity: x25519.Identity, org: Organization, made: datetime) -> str:
    """The sheet's text: a valid age identity file, readable by a shop owner."""
    code = org.code or str(org.id)
    public = str(identity.to_public())
    return "\n".join([
        "# DESKTOP BACKUP: RECOVERY SHEET. Keep it locked away; print it or save it now.",
        "# Without this key an encrypted backup cannot be opened, by anyone.",
        "# Anyone who holds it can read this organization's backups.",
        "#",
        f"# Organization: {org.name}",
        f"# Organization code: {code}",
        f"# Organization id: {org.id}",
        f"# Date: {made:%Y-%m-%d %H:%M}",
        f"# Public key: {public}",
        f"# Public key fingerprint: {fingerprint(public)}",
        "#",
        "# How to restore with it:",
        f"# 1. On any workstation: desktop-backup key import THIS-FILE --org {code}",
        "#    (or paste the key below when the restore wizard asks for it), then restore.",
        "# 2. Without Desktop Backup: age -d -i THIS-FILE -o backup.zip "
        f"org_{code}_monday_backup.zip.age",
        "#    (rage works the same way); then desktop-backup verify backup.zip.",
        "# 3. The secret key is the one line below that does not start with #.",
        "",
        str(identity),
        "",
    ])


def parse_recovery_text(text: str) -> RecoveryKey:
    """The key from a recovery sheet's text or a pasted ``AGE-SECRET-KEY-1…`` line.

    Tolerates what copying does to a key (lower case, spaces or line breaks inside it);
    InvalidKey when there is no key, more than one, or its checksum is wrong."""
    found = set(_SECRET_KEY.findall(text.upper()))
    if not found:
        squeezed = re.sub(r"\s+", "", text.upper())
        found = set(_SECRET_KEY.findall(squeezed))
    if not found:
        raise InvalidKey("No recovery key was found: it is the line that starts with "
                         "AGE-SECRET-KEY-1 on the recovery sheet.")
    if len(found) > 1:
        raise InvalidKey("The text holds more than one recovery key; give the sheet of "
                         "this organization only.")
    try:
        identity = x25519.Identity.from_str(found.pop())
    except IdentityError:
        raise InvalidKey("The recovery key is mistyped or damaged (its check digits do not "
                         "match); compare it with the sheet, character by character.") from None
    org_id = _SHEET_ORG_ID.search(text)
    return RecoveryKey(identity, int(org_id.group(1)) if org_id else None)


def retyped_correctly(identity: x25519.Identity, typed: str) -> bool:
    """Whether the owner retyped the key's last RETYPE_CHARS characters from the sheet
    (case and spaces do not matter): proof that the sheet was kept."""
    wanted = str(identity)[-RETYPE_CHARS:].upper()
    return re.sub(r"\s+", "", typed).upper() == wanted


def held_keys(org_ids: Iterable[int], *, backend: KeyringBackend | None = None
              ) -> list[x25519.Identity]:
    """Every identity this workstation keeps of these organizations (of every database: a
    key that does not open a backup is simply not used), to open an encrypted backup with.
    KeyringUnavailable when the keyring cannot be asked."""
    found = []
    for org_id in dict.fromkeys(org_ids):
        found += [held.identity for held in held_org_keys(org_id, backend=backend)]
    return found
