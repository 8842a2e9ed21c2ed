"""One organization's files never touch another's: names, slot replacement, restore points."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import MetaData, Table, insert

from desktop_backup.backup import archive_owner, run_backup, slot_filename
from desktop_backup.errors import DesktopBackupError
from desktop_backup.history import ensure_tables, recent
from desktop_backup.organizations import Organization, find_organization
from desktop_backup.restore import apply_restore, list_restore_points
from desktop_backup.usecases import restore_sources
from desktop_backup.work import Site
from tests import test_restore as shared
from tests.clock import FakeClock
from tests.restore_support import MAPPING, SUPER, run

# The restore tests' fixtures: a demo database per dialect, its SQLite copy, a backup folder.
engine = shared.engine
sqlite_url = shared.sqlite_url
sqlite_engine = shared.sqlite_engine
folder = shared.folder


def org_of(engine, key) -> Organization:
    with engine.connect() as conn:
        return find_organization(conn, MAPPING, key)


def add_organization(engine, name: str, code: str | None) -> int:
    """A new, empty organization (the demo's have codes); returns its id."""
    with engine.begin() as conn:
        table = Table("organizations", MetaData(), autoload_with=conn)
        result = conn.execute(insert(table).values(
            name=name, code=code, status="active", timezone="UTC", subscription_plan_id=1,
            auto_backup_enabled=True))
        return int(result.inserted_primary_key[0])


def make(org_id: int, code: str | None) -> Organization:
    return Organization(org_id, code, f"Org {org_id}", "active", True, None, {})


def backup(engine, org: Organization, folder: Path, fmt: str = "native") -> Path:
    result = run_backup(Site(engine, MAPPING, FakeClock()), org, SUPER, folder, trigger="manual",
                        force=True, fmt=fmt)
    return result.path


def test_file_names_are_unique_per_organization_id_whatever_the_codes():
    orgs = [make(2, None), make(5, "2"), make(6, "a/b"), make(7, "../x"), make(8, "id-2"),
            make(9, "ID-5"), make(10, "MEDP"), make(11, " "), make(12, "a b"),
            make(13, "C:x"), make(14, "x\\y"), make(15, "N\u00e9")]
    names = [slot_filename(org, "monday") for org in orgs]
    assert len(set(names)) == len(orgs)
    for name in names:
        assert "/" not in name and "\\" not in name and ":" not in name and ".." not in name
    # Where the code is unambiguous, the web app's name is kept.
    assert slot_filename(make(10, "MEDP"), "monday") == "org_MEDP_monday_backup.zip"
    assert slot_filename(make(5, "2"), "friday") == "org_2_friday_backup.zip"
    assert slot_filename(make(2, None), "friday") == "org_id-2_friday_backup.zip"


def test_an_organization_without_a_code_and_one_coded_with_its_id_keep_their_own_backups(
        engine, folder):
    nameless = add_organization(engine, "No Code Traders", None)
    twin = add_organization(engine, "Twin Traders", str(nameless))
    slashed = add_organization(engine, "Slash Traders", "A/B")
    paths = {}
    for org_id in (nameless, twin, slashed):
        org = org_of(engine, org_id)
        paths[org_id] = backup(engine, org, folder)
    assert len(set(paths.values())) == 3
    for org_id, path in paths.items():
        assert path.parent == folder and path.is_file()
        assert archive_owner(path) == org_id
    # Backing one up again leaves the others' files as they were.
    before = {org_id: path.read_bytes() for org_id, path in paths.items()}
    backup(engine, org_of(engine, twin), folder)
    assert paths[nameless].read_bytes() == before[nameless]
    assert paths[slashed].read_bytes() == before[slashed]


@pytest.mark.parametrize("fmt", ["native", "seed"])
def test_a_slot_holding_another_organizations_backup_is_kept(engine, folder, fmt):
    medp, city = org_of(engine, "MEDP"), org_of(engine, "CITY")
    city_file = backup(engine, city, folder, fmt=fmt)
    medp_slot = folder / city_file.name.replace("CITY", "MEDP")
    shutil.copyfile(city_file, medp_slot)  # e.g. codes 'medp' and 'MEDP' on a Windows disk
    kept = medp_slot.read_bytes()
    with pytest.raises(DesktopBackupError, match="another organization") as caught:
        backup(engine, medp, folder)
    assert f"id {city.id}" in str(caught.value) and medp_slot.name in str(caught.value)
    assert medp_slot.read_bytes() == kept
    # (the web app's format is written into its own folder beside the slots)
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == sorted([city_file.relative_to(folder).as_posix(), medp_slot.name])
    last = recent(engine, ensure_tables(engine)[1], medp.id)[0]
    assert (last.action, last.outcome) == ("backup", "failed")
    assert "another organization" in last.message
    # The restore wizard does not offer CITY's file as MEDP's Wednesday.
    [wednesday] = [s for s in restore_sources(Site(engine, MAPPING, FakeClock()), medp, folder)
                   if s.kind == "slot" and s.weekday == "wednesday"]
    assert wednesday.path == medp_slot and not wednesday.available


def test_restore_points_are_pruned_and_listed_per_organization_id(sqlite_engine, folder):
    medp, city = org_of(sqlite_engine, "MEDP"), org_of(sqlite_engine, "CITY")
    clock = FakeClock()
    city_archive = backup(sqlite_engine, city, folder)
    run(sqlite_engine, "UPDATE customers SET name = 'renamed' WHERE organization_id = :org",
        org=city.id)  # a restore of unchanged data stops before its restore point
    city_point = apply_restore(Site(sqlite_engine, MAPPING, clock), city, city_archive,
                               SUPER, folder).restore_point
    # A file named as MEDP's oldest restore point, but CITY's inside.
    impostor = city_point.with_name("org_MEDP_restore-point_20200101-000000.zip")
    shutil.copyfile(city_point, impostor)
    medp_archive = backup(sqlite_engine, medp, folder)
    for _ in range(3):
        clock.advance(minutes=1)
        run(sqlite_engine, "UPDATE batches SET quantity = quantity + 1 WHERE organization_id = "
            ":org", org=medp.id)
        apply_restore(Site(sqlite_engine, MAPPING, clock), medp, medp_archive, SUPER, folder,
                      restore_points_kept=1)
    assert impostor.exists() and city_point.exists()
    points = list_restore_points(folder, medp)
    assert len(points) == 1 and archive_owner(points[0]) == medp.id
    assert list_restore_points(folder, city) == [city_point]
