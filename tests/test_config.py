"""Settings survive a restart, never hold a password, and say plainly when they are damaged."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from desktop_backup.config import (
    AppPaths,
    Profile,
    SchemaMapping,
    Settings,
    load_settings,
    save_settings,
    with_mapping_overrides,
)
from desktop_backup.errors import UsageError
from desktop_backup.profiles import add_profile, remove_profile, resolve_connection

pytest_plugins = ["tests.keyring_fixtures"]  # memory_keyring

PASSWORD = "Zq7-unique-db-secret"


def renamed_schema() -> SchemaMapping:
    return SchemaMapping(
        tenant_table="companies",
        tenant_column="company_id",
        admin_roles=("admin", "manager", "super_admin"),
    )


# --- the settings file ------------------------------------------------------------------------


def test_settings_survive_a_restart(app_paths):
    settings = Settings(
        profiles={"shop": Profile("shop", "postgresql+psycopg://shop@db.local:5433/billing")},
        last_profile="shop",
        remembered_username="owner",
        backup_dir="/srv/backups",
        restore_points_kept=9,
        auto_backup_on_login=False,
        schedule_time="21:30",
        theme="dark",
        mapping=renamed_schema(),
    )
    save_settings(app_paths, settings)
    assert load_settings(app_paths) == settings


def test_a_first_start_has_the_seed_defaults(app_paths):
    settings = load_settings(app_paths)
    assert settings.profiles == {}
    assert settings.mapping.tenant_table == "organizations"
    assert settings.mapping.tenant_column == "organization_id"
    assert settings.backup_folder(app_paths) == app_paths.default_backup_dir


def test_command_line_overrides_apply_on_top_of_a_saved_mapping(app_paths):
    save_settings(app_paths, Settings(mapping=renamed_schema()))
    saved = load_settings(app_paths).mapping

    mapping = with_mapping_overrides(saved, None, "tenant_id")
    assert mapping.tenant_table == "companies"  # from the file
    assert mapping.tenant_column == "tenant_id"  # from --tenant-column
    assert mapping.admin_roles == ("admin", "manager", "super_admin")
    assert with_mapping_overrides(saved, None, None) == saved


def test_a_misspelt_mapping_key_is_refused_by_name():
    with pytest.raises(UsageError, match="tenant_colum"):
        SchemaMapping.from_dict({"tenant_colum": "company_id"})


def test_a_misspelt_mapping_key_in_the_file_names_the_file_and_the_key(app_paths):
    app_paths.config_dir.mkdir(parents=True)
    app_paths.settings_file.write_text('{"mapping": {"tenant_tabel": "companies"}}')
    with pytest.raises(UsageError) as raised:
        load_settings(app_paths)
    assert str(app_paths.settings_file) in str(raised.value)
    assert "tenant_tabel" in str(raised.value)


@pytest.mark.parametrize(
    "content",
    [
        b'{"profiles": {"shop": ',  # cut short, e.g. by a power cut
        b"[1, 2, 3]",  # JSON, but not settings
        b'{"profiles": {"shop": {"address": "sqlite:///x.db"}}}',  # a profile without url
        b'{"theme": "\xff\xfe"}',  # not UTF-8
    ],
    ids=["truncated", "not-an-object", "profile-without-url", "not-utf8"],
)
def test_a_damaged_settings_file_is_named_so_it_can_be_fixed(app_paths, content):
    app_paths.config_dir.mkdir(parents=True)
    app_paths.settings_file.write_bytes(content)
    with pytest.raises(UsageError) as raised:
        load_settings(app_paths)
    message = str(raised.value)
    assert str(app_paths.settings_file) in message
    assert "damaged" in message


@pytest.mark.skipif(os.name != "posix", reason="file modes are a POSIX notion")
def test_only_the_owner_can_read_the_settings_file(app_paths):
    save_settings(app_paths, Settings())
    save_settings(app_paths, Settings(theme="dark"))  # rewriting keeps it private
    mode = stat.S_IMODE(app_paths.settings_file.stat().st_mode)
    assert mode == 0o600
    assert [p.name for p in app_paths.config_dir.iterdir()] == ["settings.json"]  # no .tmp left


def test_the_settings_home_can_be_moved_with_an_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("DESKTOP_BACKUP_HOME", str(tmp_path / "portable"))
    paths = AppPaths.default()
    save_settings(paths, Settings(theme="dark"))

    assert paths.settings_file.is_relative_to(tmp_path / "portable")
    assert paths.default_backup_dir.is_relative_to(tmp_path / "portable")
    assert load_settings(AppPaths.default()).theme == "dark"


def test_without_the_variable_the_os_folders_are_used(monkeypatch, tmp_path):
    monkeypatch.delenv("DESKTOP_BACKUP_HOME", raising=False)
    paths = AppPaths.default()
    assert "DesktopBackup" in str(paths.config_dir)
    assert not paths.config_dir.is_relative_to(tmp_path)


# --- profiles never put a password on disk --------------------------------------------------


def test_a_profile_cannot_hold_a_password_and_the_refusal_does_not_show_it():
    with pytest.raises(UsageError) as raised:
        Profile("shop", f"mysql+pymysql://shop:{PASSWORD}@db.local/billing")
    assert "keyring" in str(raised.value)
    assert PASSWORD not in str(raised.value)


def test_a_hand_edited_settings_file_with_a_password_is_refused(app_paths):
    app_paths.config_dir.mkdir(parents=True)
    url = f"mysql://shop:{PASSWORD}@db.local/billing"
    app_paths.settings_file.write_text(json.dumps({"profiles": {"shop": {"url": url}}}))
    with pytest.raises(UsageError) as raised:
        load_settings(app_paths)
    assert str(app_paths.settings_file) in str(raised.value)


@pytest.mark.parametrize(
    "url",
    [
        f"mysql+pymysql://shop:{PASSWORD}@db.local:3306/billing?charset=utf8mb4",
        f"postgresql://shop:{PASSWORD}@db.local/billing",
    ],
)
def test_the_settings_file_never_contains_the_password(app_paths, memory_keyring, url):
    settings = load_settings(app_paths)
    profile = add_profile(app_paths, settings, "shop", url)

    text = app_paths.settings_file.read_text(encoding="utf-8")
    assert PASSWORD not in text
    assert PASSWORD not in profile.url
    assert "db.local" in text  # the rest of the address is kept
    assert load_settings(app_paths).profiles["shop"] == profile


def test_a_profile_without_a_name_is_refused(app_paths, memory_keyring):
    with pytest.raises(UsageError, match="name"):
        add_profile(app_paths, load_settings(app_paths), "  ", "sqlite:///billing.db")
    assert not app_paths.settings_file.exists()


def test_a_profile_with_a_bad_address_is_refused_and_nothing_is_saved(app_paths, memory_keyring):
    with pytest.raises(UsageError, match="not a database address"):
        add_profile(app_paths, load_settings(app_paths), "shop", "billing.db")
    assert not app_paths.settings_file.exists()


def test_removing_an_unknown_profile_names_the_saved_ones(app_paths, memory_keyring):
    settings = load_settings(app_paths)
    add_profile(app_paths, settings, "front", "sqlite:///front.db")
    with pytest.raises(UsageError, match="front"):
        remove_profile(app_paths, settings, "back")


# --- which database a command talks to ------------------------------------------------------


@pytest.fixture
def two_profiles(app_paths, memory_keyring) -> Settings:
    """'front' (the first, so the default) with a saved password, and 'back' without one."""
    settings = load_settings(app_paths)
    add_profile(app_paths, settings, "front", "mysql+pymysql://shop:front-pw@front.local/billing")
    add_profile(app_paths, settings, "back", "postgresql://shop@back.local/billing")
    return settings


def test_db_url_wins_over_profiles_and_brings_its_own_password(app_paths, two_profiles):
    target = resolve_connection(
        app_paths, two_profiles, "mysql+pymysql://cli:cli-pw@other.local/billing", "back"
    )
    assert target.url == "mysql+pymysql://cli@other.local/billing"
    assert target.password == "cli-pw"
    assert target.profile is None


def test_db_url_without_password_leaves_the_asking_to_the_caller(app_paths, two_profiles):
    target = resolve_connection(app_paths, two_profiles, "sqlite:///elsewhere.db", None)
    assert target.url == "sqlite:///elsewhere.db"
    assert target.password is None


def test_a_named_profile_gets_its_password_from_the_keyring(app_paths, two_profiles):
    front = resolve_connection(app_paths, two_profiles, None, "front")
    assert front.url == "mysql+pymysql://shop@front.local/billing"
    assert front.password == "front-pw"
    assert front.profile == "front"

    back = resolve_connection(app_paths, two_profiles, None, "back")
    assert back.url == "postgresql://shop@back.local/billing"
    assert back.password is None  # none saved: the caller asks


def test_without_db_or_profile_the_last_profile_is_used(app_paths, two_profiles):
    assert two_profiles.last_profile == "front"
    target = resolve_connection(app_paths, None, None, None)  # settings read from disk
    assert target.profile == "front"
    assert target.password == "front-pw"


def test_a_logged_target_does_not_show_the_password(app_paths, two_profiles):
    target = resolve_connection(app_paths, two_profiles, None, "front")
    assert "front-pw" not in repr(target)


def test_with_nothing_saved_the_user_is_told_what_to_give(app_paths, memory_keyring):
    with pytest.raises(UsageError) as raised:
        resolve_connection(app_paths, load_settings(app_paths), None, None)
    assert str(raised.value) == "Give --db URL or --profile NAME (no saved connection profile)."


def test_an_unknown_profile_names_the_known_ones(app_paths, two_profiles):
    with pytest.raises(UsageError) as raised:
        resolve_connection(app_paths, two_profiles, None, "frnt")
    message = str(raised.value)
    assert "'frnt'" in message
    assert "back, front" in message


def test_removing_the_default_profile_means_asking_which_one(app_paths, two_profiles):
    remove_profile(app_paths, two_profiles, "front")
    with pytest.raises(UsageError) as raised:
        resolve_connection(app_paths, None, None, None)
    assert "--profile" in str(raised.value)
    assert "back" in str(raised.value)


def test_the_settings_file_outlives_the_object_that_wrote_it(app_paths, two_profiles):
    # Profiles added through one Settings object are what a later start sees.
    assert sorted(load_settings(app_paths).profiles) == ["back", "front"]
    assert Path(app_paths.settings_file).is_file()
