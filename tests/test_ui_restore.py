"""The restore wizard, driven as a shop owner would, against a real SQLite billing database.

The proof of a restore is the organization's rows read back with SQLAlchemy before the
damage and after the restore (tests.test_restore.org_digest); the proof of a refusal or a
cancel is that they did not move at all.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWizard

from desktop_backup.backup import run_backup, write_archive
from desktop_backup.db import open_engine
from desktop_backup.history import ensure_tables, recent
from desktop_backup.organizations import find_organization
from desktop_backup.restore import CHANGE_WORDS, apply_restore
from desktop_backup.ui.restore_context import CHECK, CHOOSE, CONFIRM, SUMMARY
from desktop_backup.ui.restore_wizard import RestoreLauncher, RestoreWizard
from desktop_backup.work import Actor, Site
from tests.clock import FakeClock
from tests.restore_support import org_digest, run, wipe_and_change

pytest_plugins = ["tests.ui_support"]  # ui, env, start_console…
WAIT_MS = 15_000
MEDP = 1


class RestoreGate:
    """apply_restore that stops at its first progress report (inside the transaction) until
    released, so Cancel is certainly pressed before the commit."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()

    def __call__(self, *args, progress=None, **kwargs):
        def held(p) -> None:
            progress(p)
            self.reached.set()
            self.release.wait(WAIT_MS / 1000)
        return apply_restore(*args, progress=held, **kwargs)


@pytest.fixture
def engine(sqlite_demo_db):
    engine = open_engine(sqlite_demo_db)
    yield engine
    engine.dispose()


@pytest.fixture
def window(qtbot, ui, start_console, sqlite_demo_db):
    """medp.admin logged in, today's backup made at login, everything read."""
    console = start_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    with qtbot.waitSignal(window.session.backupDone, timeout=WAIT_MS):
        pass
    wait_idle(qtbot, window)
    return window


def wait_idle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: not window.session.backup_running and not window.session.runner.busy,
                    timeout=WAIT_MS)


def slot_of(env) -> Path:
    return env.backup_folder / "org_MEDP_wednesday_backup.zip"


def open_wizard(qtbot, window, path: Path | None = None) -> RestoreWizard:
    launcher = window.findChild(RestoreLauncher, "restoreLauncher")
    with qtbot.waitSignal(launcher.wizardOpened, timeout=WAIT_MS) as opened:
        if path is None:
            window.restore_action.trigger()  # File ▸ Restore…
        else:
            window.file_action("restore", path)  # a day cell's or a history row's Restore…
    wizard = opened.args[0]
    assert wizard.objectName() == "restoreWizard" and wizard.isVisible()
    assert wizard.isModal() or wizard.windowModality() != Qt.WindowModality.NonModal
    return wizard


def start_held_restore(qtbot, window, env) -> tuple[RestoreWizard, RestoreGate]:
    """Today's slot checked, confirmed and restoring, held inside its transaction by the
    gate with its first row count on the window (the caller releases it). The caller
    changes the data first: a restore that would change nothing stops at the check."""
    gate = env.restore_runner = RestoreGate()
    wizard = open_wizard(qtbot, window, slot_of(env))
    assert wait_checked(qtbot, wizard).ok
    qtbot.mouseClick(next_button(wizard), Qt.MouseButton.LeftButton)
    qtbot.keyClicks(wizard.confirm_page.code_edit, "MEDP")
    try:
        qtbot.mouseClick(restore_button(wizard), Qt.MouseButton.LeftButton)
        qtbot.waitUntil(gate.reached.is_set, timeout=WAIT_MS)
        # The report that reached the gate crosses to the window as a queued signal: wait
        # until the window shows it, not only until the worker sent it.
        qtbot.waitUntil(lambda: wizard.restore_page.bar.format().endswith("rows"),
                        timeout=WAIT_MS)
    except BaseException:
        gate.release.set()
        raise
    return wizard, gate


def wait_checked(qtbot, wizard: RestoreWizard):
    qtbot.waitUntil(lambda: not wizard.check_page.running and wizard.currentId() == CHECK,
                    timeout=WAIT_MS)
    return wizard.plan


def next_button(wizard: RestoreWizard):
    return wizard.button(QWizard.WizardButton.NextButton)


def restore_button(wizard: RestoreWizard):
    return wizard.button(QWizard.WizardButton.CommitButton)


def confirm_and_restore(qtbot, wizard: RestoreWizard):
    """From the check page: Next, type the code, Enter; the outcome."""
    qtbot.mouseClick(next_button(wizard), Qt.MouseButton.LeftButton)
    assert wizard.currentId() == CONFIRM
    edit = wizard.confirm_page.code_edit
    assert edit.hasFocus() or not wizard.isActiveWindow()
    qtbot.keyClicks(edit, "MEDP")
    with qtbot.waitSignal(wizard.restoreDone, timeout=WAIT_MS) as done:
        qtbot.keyClick(edit, Qt.Key.Key_Return)  # Enter is "Restore now"
    return done.args[0]


def audit(engine):
    return recent(engine, ensure_tables(engine)[1], MEDP)


# --- the whole way through ----------------------------------------------------------------------


def test_restore_a_slot_end_to_end(qtbot, window, env, engine):
    slot = slot_of(env)
    before = org_digest(engine, MEDP)
    wipe_and_change(engine)  # rows deleted, customers edited, one added, a user deleted
    changed = org_digest(engine, MEDP)
    assert changed != before
    customers = len([1 for _ in engine.connect().exec_driver_sql(
        "SELECT id FROM customers WHERE organization_id = 1")])

    wizard = open_wizard(qtbot, window)
    assert wizard.currentId() == CHOOSE
    choose = wizard.choose_page
    qtbot.waitUntil(lambda: choose.sources is not None, timeout=WAIT_MS)
    assert not next_button(wizard).isEnabled()  # nothing chosen yet
    monday = next(s for s in choose.sources if s.weekday == "monday")
    assert not monday.available
    wednesday = choose.items_by_path[str(slot)]
    assert "Wednesday (today)" in wednesday.text(0) and wednesday.text(1).startswith("Wed 25 Nov")
    choose.tree.setCurrentItem(wednesday)
    assert next_button(wizard).isEnabled()
    with qtbot.waitSignal(wizard.checked, timeout=WAIT_MS) as checked:
        qtbot.mouseClick(next_button(wizard), Qt.MouseButton.LeftButton)
    plan = checked.args[0]
    assert plan.ok, plan.message

    check = wizard.check_page
    assert check.verdict.kind == "succeeded"
    assert "complete and undamaged" in check.verdict.message()
    assert "Medplus Pharmacy, Pune (code MEDP" in check.org_value.text()
    assert check.made_value.text().startswith("Wed 25 Nov 2026, 10:00, by Desktop Backup")
    # Exact counts: every remaining customer was renamed, one was added since the backup.
    assert check.row_for("customers") == {
        "Now": customers, "In the backup": customers - 1, "Brought back": 0,
        "Changed": customers - 1, "Unchanged": 0, "Removed": 1}
    assert plan.changes.sentence() in check.verdict.message()
    ledgers = check.row_for("stock_ledgers")
    assert ledgers["Now"] == 0 and ledgers["Brought back"] == ledgers["In the backup"] > 0
    assert check.row_for("users")["Brought back"] == 1
    assert check.row_for("states") is None  # shared tables are not the organization's
    assert not check.drift.isVisible() and next_button(wizard).isEnabled()

    qtbot.mouseClick(next_button(wizard), Qt.MouseButton.LeftButton)
    confirm = wizard.confirm_page
    assert wizard.currentId() == CONFIRM
    assert "A safety backup comes first" in confirm.safety_text.text()
    assert str(env.backup_folder / "restore-points") in confirm.safety_text.text().replace(
        "\u200b", "")
    assert "<b>Removed:</b> 1 row</li>" in confirm.what.text()
    assert f"<b>Changed:</b> {plan.changes.changed:,} rows" in confirm.what.text()
    assert not restore_button(wizard).isEnabled()
    qtbot.keyClicks(confirm.code_edit, "CITY")
    assert not restore_button(wizard).isEnabled()
    assert confirm.code_message.text() == "That is not MEDP."
    confirm.code_edit.clear()
    qtbot.keyClicks(confirm.code_edit, "medp")  # the code, whatever the case
    assert restore_button(wizard).isEnabled()
    with qtbot.waitSignal(wizard.restoreDone, timeout=WAIT_MS) as done:
        qtbot.keyClick(confirm.code_edit, Qt.Key.Key_Return)
    outcome = done.args[0]
    assert outcome.ok, outcome.message

    assert wizard.currentId() == SUMMARY
    summary = wizard.summary_page
    point = outcome.result.restore_point
    assert point.parent == env.backup_folder / "restore-points" and point.is_file()
    assert point.name in summary.point_value.text()
    assert "Undo this restore" in summary.undo.text() and summary.undo_button.isVisible()
    assert {word: summary.change_values[word].text() for word in CHANGE_WORDS} == {
        word: f"{n:,}" for word, n in zip(CHANGE_WORDS, plan.changes.counts(), strict=True)}
    assert outcome.result.changes == plan.changes
    assert org_digest(engine, MEDP) == before  # exactly the backup's rows

    qtbot.waitUntil(lambda: window.history.model.entries[0].action == "restore",
                    timeout=WAIT_MS)
    assert window.history.proxy.index(0, 5).data() == "Restore succeeded"
    assert window.notice.kind == "succeeded" and point.name in window.notice.message()
    entry = audit(engine)[0]
    assert (entry.action, entry.outcome, entry.file) == ("restore", "success", str(slot))
    with qtbot.waitSignal(wizard.finished, timeout=WAIT_MS):
        qtbot.mouseClick(wizard.button(QWizard.WizardButton.FinishButton),
                         Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)

    # The restore point is offered next time, to undo the restore.
    again = open_wizard(qtbot, window)
    qtbot.waitUntil(lambda: again.choose_page.sources is not None, timeout=WAIT_MS)
    assert str(point) in again.choose_page.items_by_path
    with qtbot.waitSignal(again.rejected, timeout=WAIT_MS):
        qtbot.keyClick(again, Qt.Key.Key_Escape)


def test_a_day_cell_opens_the_wizard_on_the_check_of_its_file(qtbot, window, env):
    cell = window.grid.cell("wednesday")
    restore = next(a for a in cell.menu().actions() if a.objectName() == "restoreAction")
    assert restore.isEnabled() and restore.text() == "&Restore…"
    launcher = window.findChild(RestoreLauncher, "restoreLauncher")
    with qtbot.waitSignal(launcher.wizardOpened, timeout=WAIT_MS) as opened:
        restore.trigger()
    wizard = opened.args[0]
    assert wizard.currentId() == CHECK and wizard.path == slot_of(env)
    assert wait_checked(qtbot, wizard).ok
    qtbot.mouseClick(wizard.button(QWizard.WizardButton.BackButton), Qt.MouseButton.LeftButton)
    assert wizard.currentId() == CHOOSE
    qtbot.waitUntil(lambda: wizard.choose_page.sources is not None, timeout=WAIT_MS)
    current = wizard.choose_page.tree.currentItem()
    assert current is not None and "Wednesday" in current.text(0)
    wizard.reject()
    assert not wizard.isVisible()


# --- refusals -----------------------------------------------------------------------------------


def test_another_organizations_backup_is_refused_on_the_check_page(qtbot, window, env, engine,
                                                                  tmp_path):
    with engine.connect() as conn:
        city = find_organization(conn, env.settings.mapping, "CITY")
    other = run_backup(Site(engine, env.settings.mapping, FakeClock()), city,
                       Actor(1, "superadmin"), tmp_path / "usb", trigger="manual").path
    before = org_digest(engine, MEDP)
    wizard = open_wizard(qtbot, window, other)
    plan = wait_checked(qtbot, wizard)
    assert not plan.ok
    check = wizard.check_page
    assert check.verdict.kind == "failed"
    assert check.verdict.message() == (
        "This backup belongs to City Care Chemists (id 2, code CITY), not to Medplus "
        "Pharmacy, Pune (MEDP); a backup can only be restored into its own organization.")
    assert "Go Back to choose another backup" in check.hint.text()
    assert not check.preview.isVisible()
    assert not next_button(wizard).isEnabled()
    assert org_digest(engine, MEDP) == before
    qtbot.mouseClick(wizard.button(QWizard.WizardButton.BackButton), Qt.MouseButton.LeftButton)
    assert wizard.choose_page.file_edit.text() == str(other)  # not in the list: typed in


def test_a_corrupt_file_is_refused_with_the_reason(qtbot, window, env, engine, tmp_path):
    damaged = tmp_path / "org_MEDP_wednesday_backup.zip"
    data = slot_of(env).read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    before = org_digest(engine, MEDP)
    wizard = open_wizard(qtbot, window, damaged)
    plan = wait_checked(qtbot, wizard)
    assert not plan.ok
    message = wizard.check_page.verdict.message()
    assert message == (f"{damaged.name} cannot be restored: {damaged.name} is not a zip file, "
                       "or it is truncated or damaged.")
    assert "Traceback" not in message and not next_button(wizard).isEnabled()
    assert org_digest(engine, MEDP) == before


def test_dropped_columns_are_listed_and_need_the_tick(qtbot, window, engine):
    run(engine, "ALTER TABLE customers DROP COLUMN gstin")
    run(engine, "UPDATE customers SET name = 'renamed since' WHERE organization_id = 1")
    wizard = open_wizard(qtbot, window, slot_of(window.env))
    plan = wait_checked(qtbot, wizard)
    assert plan.ok and plan.dropped == ["customers.gstin"]
    check = wizard.check_page
    assert check.drift.isVisible() and "customers.gstin" in check.drift_text.text()
    assert not next_button(wizard).isEnabled()
    check.accept_dropped.click()
    assert next_button(wizard).isEnabled()
    qtbot.mouseClick(next_button(wizard), Qt.MouseButton.LeftButton)
    assert "customers.gstin is not restored" in wizard.confirm_page.what.text()
    wizard.reject()


def test_a_file_changed_after_the_check_fails_with_a_sentence(qtbot, window, env, engine,
                                                             tmp_path):
    copy = tmp_path / "copy" / "org_MEDP_wednesday_backup.zip"
    copy.parent.mkdir()
    shutil.copyfile(slot_of(env), copy)
    run(engine, "UPDATE customers SET name = 'renamed since' WHERE organization_id = 1")
    before = org_digest(engine, MEDP)
    wizard = open_wizard(qtbot, window, copy)
    assert wait_checked(qtbot, wizard).ok
    with copy.open("ab") as handle:  # someone copies another file over it meanwhile
        handle.write(b"\0")
    outcome = confirm_and_restore(qtbot, wizard)
    assert not outcome.ok and not outcome.cancelled
    summary = wizard.summary_page
    assert wizard.currentId() == SUMMARY and summary.title() == "Restore failed"
    assert summary.verdict.kind == "failed"
    assert summary.verdict.message().startswith(
        f"{copy.name} has changed or gone since it was checked; check it again")
    assert not summary.point_value.isVisible()
    assert org_digest(engine, MEDP) == before
    qtbot.waitUntil(lambda: window.notice.message().startswith("The restore failed: "),
                    timeout=WAIT_MS)


def test_escape_during_the_check_closes_the_wizard(qtbot, window, env):
    wizard = open_wizard(qtbot, window, slot_of(env))
    with qtbot.waitSignal(wizard.rejected, timeout=WAIT_MS):
        qtbot.keyClick(wizard, Qt.Key.Key_Escape)
    assert not wizard.isVisible()
    wait_idle(qtbot, window)  # the reading stopped (or had finished)
    assert window.findChild(RestoreLauncher, "restoreLauncher").wizard is None


# --- cancel -------------------------------------------------------------------------------------


def test_cancel_during_the_restore_rolls_everything_back(qtbot, window, env, engine):
    wipe_and_change(engine)
    changed = org_digest(engine, MEDP)
    wizard, gate = start_held_restore(qtbot, window, env)
    try:
        page = wizard.restore_page
        assert page.running and page.bar.format().endswith("rows")
        cancel = wizard.button(QWizard.WizardButton.CancelButton)
        qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)
        assert wizard.isVisible()  # it waits for the rollback
        assert cancel.text() == "Cancelling…" and not cancel.isEnabled()
        qtbot.keyClick(wizard, Qt.Key.Key_Escape)  # Escape cancels too, and still waits
        assert wizard.isVisible()
    finally:
        gate.release.set()
    with qtbot.waitSignal(wizard.restoreDone, timeout=WAIT_MS) as done:
        pass
    outcome = done.args[0]
    assert outcome.cancelled and not outcome.ok
    assert wizard.currentId() == SUMMARY
    assert wizard.summary_page.title() == "Restore cancelled"
    assert wizard.summary_page.verdict.message() == (
        "The restore was cancelled; nothing was changed.")
    assert org_digest(engine, MEDP) == changed
    assert audit(engine)[0].outcome == "cancelled"
    qtbot.waitUntil(lambda: "cancelled" in window.notice.message(), timeout=WAIT_MS)


def test_no_backup_starts_while_a_restore_is_writing(qtbot, window, env, engine):
    """The tray's Back up now and the schedule both go through start_backup: while the
    restore's transaction runs, it refuses with a sentence instead of reading a
    half-restored organization; once the restore is done, a backup starts again."""
    wipe_and_change(engine)  # so that the restore has something to change
    wizard, gate = start_held_restore(qtbot, window, env)
    try:
        assert window.session.start_backup("manual", force=True) is None
        assert window.session.start_backup("schedule", force=False) is None
        assert not window.session.backup_running
        assert window.notice.message() == "A restore is running; back up once it has finished."
    finally:
        gate.release.set()
    with qtbot.waitSignal(wizard.restoreDone, timeout=WAIT_MS) as done:
        pass
    assert done.args[0].ok
    wizard.accept()
    qtbot.waitUntil(lambda: not window.session.runner.busy, timeout=WAIT_MS)
    task = window.session.start_backup("manual", force=True)
    assert task is not None
    qtbot.waitUntil(lambda: not window.session.backup_running, timeout=WAIT_MS)


# --- the web app's backup -----------------------------------------------------------------------


def test_a_web_app_backup_is_chosen_from_disk_and_restored(qtbot, window, env, engine, prompts,
                                                          tmp_path):
    web = tmp_path / "from-the-web-app" / "org_MEDP_wednesday_full_backup.zip"
    web.parent.mkdir()
    write_archive(Site(engine, env.settings.mapping, FakeClock()), MEDP, web,
                  Actor(3, "medp.admin"), trigger="login", fmt="seed")
    names = sorted(r[0] for r in engine.connect().exec_driver_sql(
        "SELECT name FROM customers WHERE organization_id = 1"))
    run(engine, "UPDATE customers SET name = 'overwritten' WHERE organization_id = 1")

    wizard = open_wizard(qtbot, window)
    choose = wizard.choose_page
    prompts.backup_file = web
    qtbot.mouseClick(choose.browse_button, Qt.MouseButton.LeftButton)
    assert prompts.asked[-1] == "backup file"
    assert choose.file_edit.text() == str(web) and next_button(wizard).isEnabled()
    qtbot.mouseClick(next_button(wizard), Qt.MouseButton.LeftButton)
    plan = wait_checked(qtbot, wizard)
    assert plan.ok and plan.kind == "seed", plan.message
    # Written by the console in the web app's format: it says who made it.
    assert "by Desktop Backup in the web app's format" in wizard.check_page.made_value.text()
    assert "row count verified" in wizard.check_page.contents_value.text()
    outcome = confirm_and_restore(qtbot, wizard)
    assert outcome.ok, outcome.message
    assert sorted(r[0] for r in engine.connect().exec_driver_sql(
        "SELECT name FROM customers WHERE organization_id = 1")) == names


def test_typing_a_path_that_is_not_there_keeps_next_disabled(qtbot, window, tmp_path):
    wizard = open_wizard(qtbot, window)
    choose = wizard.choose_page
    assert ".zip.age" in choose.file_edit.placeholderText()  # encrypted backups are chosen too
    qtbot.keyClicks(choose.file_edit, str(tmp_path / "nowhere.zip"))
    assert choose.file_message.message() == "There is no file at this path."
    assert not next_button(wizard).isEnabled()
    with qtbot.waitSignal(wizard.rejected, timeout=WAIT_MS):
        qtbot.keyClick(choose.file_edit, Qt.Key.Key_Escape)


def test_the_wizard_says_when_a_backup_was_changed_since_the_console_wrote_it(qtbot, window,
                                                                             env, tmp_path):
    from tests.restore_support import keep_seal, retable

    slot = slot_of(env)
    changed = keep_seal(slot, retable(slot, tmp_path / "org_MEDP_changed_backup.zip",
                                      "customers", lambda rows: rows[0].update(name="Edited")))
    wizard = open_wizard(qtbot, window, changed)
    plan = wait_checked(qtbot, wizard)
    assert plan.ok and plan.authenticity == "changed"
    page = wizard.check_page
    assert "changed since this console wrote it" in page.verdict.message()
    assert "It has been changed since this console wrote it" in page.made_value.text()
    wizard.grab().save("/tmp/wizard-changed.png")
    wizard.reject()


# --- what the restore changes, and undoing it ----------------------------------------------------


def test_nothing_would_change_stops_at_the_check(qtbot, window, env, engine):
    """The backup made at login holds exactly what is there: the check says so, and there is
    no way on to a restore point or a transaction."""
    before = org_digest(engine, MEDP)
    wizard = open_wizard(qtbot, window, slot_of(env))
    plan = wait_checked(qtbot, wizard)
    assert plan.ok and plan.changes_nothing
    check = wizard.check_page
    assert check.verdict.message().startswith("Nothing would change: Medplus Pharmacy")
    assert "No restore point is made" in check.hint.text() and check.hint.isVisible()
    assert not next_button(wizard).isEnabled()
    customers = check.row_for("customers")
    assert customers["Unchanged"] == customers["Now"] > 0
    assert customers["Changed"] == customers["Brought back"] == customers["Removed"] == 0
    wizard.grab().save(str(env.paths.data_dir / "nothing-would-change.png"))
    wizard.reject()
    assert not (env.backup_folder / "restore-points").exists()
    assert org_digest(engine, MEDP) == before


def test_undo_this_restore_from_the_result_page_and_from_the_history(qtbot, window, env,
                                                                      engine):
    before = org_digest(engine, MEDP)
    wipe_and_change(engine)
    changed = org_digest(engine, MEDP)
    wizard = open_wizard(qtbot, window, slot_of(env))
    assert wait_checked(qtbot, wizard).ok
    outcome = confirm_and_restore(qtbot, wizard)
    assert outcome.ok and org_digest(engine, MEDP) == before
    point = outcome.result.restore_point
    summary = wizard.summary_page
    assert summary.undo_button.isVisible() and summary.undo_button.isEnabled()
    wizard.grab().save(str(env.paths.data_dir / "restore-finished.png"))

    # One click: the restore point goes through the same check, then the same confirmation.
    with qtbot.waitSignal(wizard.checked, timeout=WAIT_MS) as checked:
        qtbot.mouseClick(summary.undo_button, Qt.MouseButton.LeftButton)
    plan = checked.args[0]
    assert plan.ok and plan.archive_path == point and not plan.changes_nothing
    assert wizard.currentId() == CHECK and wizard.path == point
    undone = confirm_and_restore(qtbot, wizard)
    assert undone.ok and org_digest(engine, MEDP) == changed
    with qtbot.waitSignal(wizard.finished, timeout=WAIT_MS):
        qtbot.mouseClick(wizard.button(QWizard.WizardButton.FinishButton),
                         Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)

    # The history offers the same for the undo itself: its own restore point.
    history = window.history
    qtbot.waitUntil(lambda: history.model.entries[0].file == str(point), timeout=WAIT_MS)
    last = history.model.entries[0]
    assert last.action == "restore" and last.restore_point and last.restore_point != str(point)
    history.select_row(next(row for row, entry in enumerate(history.proxy_entries())
                            if entry.id == last.id))
    assert history.undo_button.isVisible() and history.undo_button.isEnabled()
    launcher = window.findChild(RestoreLauncher, "restoreLauncher")
    with qtbot.waitSignal(launcher.wizardOpened, timeout=WAIT_MS) as opened:
        qtbot.mouseClick(history.undo_button, Qt.MouseButton.LeftButton)
    again = opened.args[0]
    plan = wait_checked(qtbot, again)
    assert plan.ok and str(plan.archive_path) == last.restore_point
    assert plan.changes.sentence() in again.check_page.verdict.message()
    again.reject()


@pytest.fixture
def owner_window(qtbot, ui, start_console, sqlite_demo_db):
    """medp.owner logged in (an owner may restore the organization's owner and admins),
    today's backup made at login."""
    window = ui.log_in(start_console(sqlite_demo_db), "medp.owner")
    with qtbot.waitSignal(window.session.backupDone, timeout=WAIT_MS):
        pass
    wait_idle(qtbot, window)
    return window


def test_a_lost_organization_is_restored_without_a_restore_point_and_no_undo(
        qtbot, owner_window, env, engine):
    """Every row of MEDP is gone: the confirm page promises no restore point, the restore
    makes none, and the finished page says there was nothing to save, with no Undo."""
    from tests.restore_support import delete_organization

    window = owner_window
    before = org_digest(engine, MEDP)
    delete_organization(engine, MEDP)
    wizard = open_wizard(qtbot, window, slot_of(env))
    plan = wait_checked(qtbot, wizard)
    assert plan.ok and plan.nothing_to_save, plan.message
    qtbot.mouseClick(next_button(wizard), Qt.MouseButton.LeftButton)
    safety = wizard.confirm_page.safety_text.text()
    assert "No restore point is needed" in safety and "nothing to save first" in safety
    assert "safety backup comes first" not in safety and "Undo this restore" not in safety
    wizard.grab().save(str(env.paths.data_dir / "lost-organization-confirm.png"))
    qtbot.keyClicks(wizard.confirm_page.code_edit, "MEDP")
    with qtbot.waitSignal(wizard.restoreDone, timeout=WAIT_MS) as done:
        qtbot.keyClick(wizard.confirm_page.code_edit, Qt.Key.Key_Return)
    outcome = done.args[0]
    assert outcome.ok, outcome.message
    assert org_digest(engine, MEDP) == before
    step = wizard.restore_page.step_labels[0].text()
    assert step == "1. No restore point: there is no data to save"
    assert "no restore point is saved" in wizard.restore_page.source.text()

    summary = wizard.summary_page
    assert wizard.currentId() == SUMMARY and outcome.result.restore_point is None
    assert summary.point_value.text().startswith("None: Medplus Pharmacy")
    assert "nothing to save first" in summary.point_value.text()
    assert "There is no Undo for this restore" in summary.undo.text()
    assert summary.undo.isVisible() and summary.facts.isVisible()
    assert not summary.undo_button.isVisible() and not summary.folder_button.isVisible()
    assert not (env.backup_folder / "restore-points").exists() or not any(
        (env.backup_folder / "restore-points").iterdir())
    wizard.grab().save(str(env.paths.data_dir / "lost-organization-restored.png"))
    entry = audit(engine)[0]
    assert (entry.action, entry.outcome, entry.restore_point) == ("restore", "success", None)
    with qtbot.waitSignal(wizard.finished, timeout=WAIT_MS):
        qtbot.mouseClick(wizard.button(QWizard.WizardButton.FinishButton),
                         Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    history = window.history
    qtbot.waitUntil(lambda: history.model.entries[0].action == "restore", timeout=WAIT_MS)
    last = history.model.entries[0]
    history.select_row(next(row for row, entry in enumerate(history.proxy_entries())
                            if entry.id == last.id))
    assert not (history.undo_button.isVisible() and history.undo_button.isEnabled())
