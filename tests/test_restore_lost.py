"""A lost organization's restore: no restore point of its (empty) rows, and proof it is empty.

When the check finds none of the organization's rows in any table the restore writes, a
restore point would hold nothing and its Undo would only delete what the restore brought
back; so none is made (issue 21). The transaction must then prove the organization is still
empty: a sale made between the check and the restore would otherwise be lost with nothing to
undo to, so it refuses and changes nothing.
"""

from __future__ import annotations

import json

import pytest

from desktop_backup.history import ensure_tables, recent
from desktop_backup.restore import (
    RestoreRefused,
    apply_restore,
    check_restore,
    list_restore_points,
    preview_text,
)
from desktop_backup.work import Site
from tests import test_restore as shared
from tests import test_restore_cli as shared_cli
from tests.clock import FakeClock
from tests.restore_support import (
    MAPPING,
    SUPER,
    backup,
    db_digest,
    delete_organization,
    org_digest,
    org_of,
    run,
    wipe_and_change,
)

engine = shared.engine
folder = shared.folder
sqlite_url = shared.sqlite_url
sqlite_engine = shared.sqlite_engine
cli = shared_cli.cli


def site(engine) -> Site:
    return Site(engine, MAPPING, FakeClock())


def last_audit(engine, org_id: int):
    return recent(engine, ensure_tables(engine)[1], org_id)[0]


def test_a_lost_organization_comes_back_without_a_restore_point_and_says_why(engine, folder):
    medp, city = org_of(engine), org_of(engine, "CITY")
    before = org_digest(engine, medp.id)
    archive = backup(engine, folder)
    delete_organization(engine, medp.id)
    city_now = org_digest(engine, city.id)

    plan = check_restore(Site(engine, MAPPING), medp, archive, restorer=SUPER)
    assert plan.ok and plan.nothing_to_save, plan.message
    words = preview_text(plan, medp)
    assert "has no data here now, so there is nothing to save first" in words
    assert "saved as a restore point" not in words

    result = apply_restore(site(engine), medp, plan, SUPER, folder)
    assert org_digest(engine, medp.id) == before  # every row came back
    assert org_digest(engine, city.id) == city_now
    assert result.ok and result.restore_point is None and result.nothing_to_save
    assert not result.changed_nothing and result.inserted == plan.rows_in_backup > 0
    assert "had no data here before, so there was nothing to save first" in result.message
    assert "Undo" not in result.message
    assert not list_restore_points(folder, medp)
    points = folder / "restore-points"
    assert not points.exists() or not any(points.iterdir())  # no file, not even a partial
    assert result.to_dict()["restore_point"] is None and result.to_dict()["nothing_to_save"]
    audited = last_audit(engine, medp.id)
    assert audited.outcome == "success" and audited.restore_point is None
    assert "nothing to save first" in audited.message


def test_a_sale_made_between_the_check_and_the_restore_stops_it(engine, folder):
    """The check found MEDP empty; then a cashier adds a customer: the restore (which made no
    restore point) refuses inside its transaction, and nothing changes."""
    medp = org_of(engine)
    archive = backup(engine, folder)
    delete_organization(engine, medp.id)
    plan = check_restore(Site(engine, MAPPING), medp, archive, restorer=SUPER)
    assert plan.nothing_to_save
    run(engine, "INSERT INTO customers (organization_id, name, opening_balance) "
                "VALUES (:org, 'walk-in after the check', 5)", org=medp.id)
    everything = db_digest(engine)
    with pytest.raises(RestoreRefused) as refusal:
        apply_restore(site(engine), medp, plan, SUPER, folder)
    message = str(refusal.value)
    assert "changed since the backup was checked" in message and "customers" in message
    assert "nothing was restored" in message and "check the backup again" in message
    assert db_digest(engine) == everything
    assert not list_restore_points(folder, medp)
    audited = last_audit(engine, medp.id)
    assert audited.outcome == "refused" and "customers" in audited.message


def test_a_row_in_a_table_without_a_key_also_stops_it(sqlite_engine, folder):
    """Tables without a primary key are counted instead of compared: a note written after
    the check stops the restore just the same."""
    run(sqlite_engine, "CREATE TABLE till_notes (organization_id INTEGER, note VARCHAR(50))")
    run(sqlite_engine, "INSERT INTO till_notes VALUES (1, 'a'), (2, 'CITY')")
    medp = org_of(sqlite_engine)
    archive = backup(sqlite_engine, folder)
    delete_organization(sqlite_engine, medp.id)
    plan = check_restore(Site(sqlite_engine, MAPPING), medp, archive, restorer=SUPER)
    assert plan.nothing_to_save
    run(sqlite_engine, "INSERT INTO till_notes VALUES (1, 'written after the check')")
    everything = db_digest(sqlite_engine)
    with pytest.raises(RestoreRefused, match="table till_notes now holds 1 of its row"):
        apply_restore(site(sqlite_engine), medp, plan, SUPER, folder)
    assert db_digest(sqlite_engine) == everything


def test_an_organization_with_rows_still_gets_its_restore_point(sqlite_engine, folder):
    medp = org_of(sqlite_engine)
    before = org_digest(sqlite_engine, medp.id)
    archive = backup(sqlite_engine, folder)
    wipe_and_change(sqlite_engine)
    plan = check_restore(Site(sqlite_engine, MAPPING), medp, archive, restorer=SUPER)
    assert plan.ok and not plan.nothing_to_save
    assert "saved as a restore point" in preview_text(plan, medp)
    result = apply_restore(site(sqlite_engine), medp, plan, SUPER, folder)
    assert org_digest(sqlite_engine, medp.id) == before
    assert result.restore_point is not None and result.restore_point.is_file()
    assert list_restore_points(folder, medp) == [result.restore_point]
    assert not result.nothing_to_save and "Undo this restore puts it back" in result.message
    assert last_audit(sqlite_engine, medp.id).restore_point == str(result.restore_point)


def test_the_command_line_claims_no_restore_point_for_a_lost_organization(cli, sqlite_engine):
    medp = org_of(sqlite_engine)
    before = org_digest(sqlite_engine, medp.id)
    archive = backup(sqlite_engine, cli.folder)
    delete_organization(sqlite_engine, medp.id)
    code, out, err = cli(archive, "--yes", "--json", user="superadmin")
    assert code == 0, err
    result = json.loads(out)
    assert result["ok"] and result["restore_point"] is None and result["nothing_to_save"]
    assert "had no data here before" in result["message"]
    assert "Restore point:" not in result["message"]
    assert "Saving the data as it is now as a restore point" not in err
    assert "there is no data to save as a restore point first" in err
    assert "nothing to save first (no restore point is made)" in err  # the preview
    assert not list_restore_points(cli.folder, medp)
    assert org_digest(sqlite_engine, medp.id) == before
