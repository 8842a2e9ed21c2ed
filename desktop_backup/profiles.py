"""Connection profiles: a saved name for a billing database, its password in the keyring.

The settings file keeps only the address without its password; the password goes to the OS
keyring (:mod:`desktop_backup.keystore`). Where no keyring works, a profile is still saved and
the person is told, by a :class:`KeyringUnavailable` raised *after* saving, that the password
will be asked for each time; an exception rather than a return value so that no caller can
silently drop that news.

:func:`resolve_connection` is the one place that decides which database a command or the
window talks to: ``--db URL`` first, then ``--profile NAME``, then the last profile used.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from desktop_backup import keystore
from desktop_backup.config import (
    AppPaths,
    Profile,
    Settings,
    load_settings,
    save_settings,
    strip_password,
    url_password,
)
from desktop_backup.errors import KeyringUnavailable, UsageError


@dataclass(frozen=True)
class Target:
    """The database to connect to: an address safe to show, and the password if known.

    ``password`` None means nobody knows it yet: ask the user (the keyring has none, or the
    --db URL carried none). It is left out of ``repr`` so a logged Target never shows it.
    """

    url: str
    password: str | None = field(default=None, repr=False)
    profile: str | None = None


def add_profile(
    paths: AppPaths,
    settings: Settings,
    name: str,
    url: str,
    password: str | None = None,
) -> Profile:
    """Save (or replace) a profile, and remember its password in the keyring.

    The password is ``password`` if given, else the one inside ``url``; the settings file gets
    the URL without it. With no password at all, an already saved one is kept, so editing a
    profile's address does not forget it. The first profile becomes the default one.

    ``settings`` is updated in place and written to disk. Raises KeyringUnavailable after the
    profile has been saved when its password could not be kept.
    """
    name = name.strip()
    if not name:
        raise UsageError("A connection profile needs a name.")
    profile = Profile(name=name, url=strip_password(url))
    _commit(
        paths,
        settings,
        profiles={**settings.profiles, name: profile},
        last_profile=settings.last_profile or name,
    )
    secret = password or url_password(url)
    if secret:
        try:
            keystore.set_password(name, secret)
        except KeyringUnavailable as exc:
            raise KeyringUnavailable(
                f"The profile '{name}' is saved, but not its password: {_lower_first(exc)}"
            ) from exc
    return profile


def remove_profile(paths: AppPaths, settings: Settings, name: str) -> None:
    """Delete a profile and its saved password; ``settings`` is updated and written to disk.

    Raises KeyringUnavailable after removing the profile when the keyring (locked) kept the
    password, so the person knows it is still on this computer.
    """
    _known_profile(settings, name)
    _commit(
        paths,
        settings,
        profiles={key: p for key, p in settings.profiles.items() if key != name},
        last_profile=None if settings.last_profile == name else settings.last_profile,
    )
    try:
        keystore.forget_password(name)
    except KeyringUnavailable as exc:
        raise KeyringUnavailable(
            f"The profile '{name}' is removed, but {_lower_first(exc)}"
        ) from exc


def resolve_connection(
    paths: AppPaths,
    settings: Settings | None,
    db_url: str | None,
    profile: str | None,
) -> Target:
    """Which database to use: --db URL, else --profile NAME, else the last profile used.

    A --db URL's own password is used if it has one; a profile's comes from the keyring.
    ``settings`` None means read them from ``paths``. Raises UsageError when nothing says
    which database, or the profile is unknown (naming the saved ones).
    """
    if db_url:
        return Target(url=strip_password(db_url), password=url_password(db_url), profile=None)
    if settings is None:
        settings = load_settings(paths)
    name = profile or settings.last_profile
    if not name:
        if settings.profiles:
            raise UsageError(
                f"Give --db URL or --profile NAME (saved profiles: {_names(settings)})."
            )
        raise UsageError("Give --db URL or --profile NAME (no saved connection profile).")
    chosen = _known_profile(settings, name)
    return Target(url=chosen.url, password=keystore.get_password(name), profile=name)


def _known_profile(settings: Settings, name: str) -> Profile:
    """The profile called ``name``, or a UsageError that lists the ones that exist."""
    if name in settings.profiles:
        return settings.profiles[name]
    if settings.profiles:
        raise UsageError(
            f"There is no connection profile named '{name}'; "
            f"the saved profiles are: {_names(settings)}."
        )
    raise UsageError(
        f"There is no connection profile named '{name}' (none is saved yet); give --db URL."
    )


def _commit(paths: AppPaths, settings: Settings, **changes: Any) -> None:
    """Write the changed settings first, and change the caller's object only once saved."""
    save_settings(paths, replace(settings, **changes))
    for key, value in changes.items():
        setattr(settings, key, value)


def _names(settings: Settings) -> str:
    return ", ".join(sorted(settings.profiles))


def _lower_first(exc: Exception) -> str:
    text = str(exc)
    return text[:1].lower() + text[1:]
