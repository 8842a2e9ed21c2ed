"""The window's off-site copies: the settings' Off-site page with its "Test connection",
the upload after the backup on its own thread, and each day card's off-site line."""

from __future__ import annotations

import json
import socket
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtWidgets import QWizard

from desktop_backup.history import ensure_tables, recent
from desktop_backup.offsite_queue import OffsiteDay, offsite_line, offsite_warning
from desktop_backup.scratch import scratch_parent
from desktop_backup.ui.restore_context import CHECK, CHOOSE
from desktop_backup.ui.restore_pages import OFFSITE_ROLE
from desktop_backup.ui.restore_wizard import RestoreLauncher, RestoreWizard
from desktop_backup.ui.settings_dialog import SettingsDialog
from desktop_backup.wording import date_time, human_size
from tests.rclone_servers import SECRET, Server

pytest_plugins = ["tests.ui_support", "tests.keyring_fixtures"]
WAIT_MS = 30_000
NOW = datetime(2026, 11, 25, 10, 0)


def test_a_day_card_says_where_its_off_site_copy_is():
    copied = OffsiteDay("wednesday", "copied", copied_at=NOW - timedelta(minutes=5))
    assert offsite_line(copied, NOW) == "Off-site: copied 09:55"
    older = OffsiteDay("monday", "copied", copied_at=datetime(2026, 11, 23, 9, 0))
    assert offsite_line(older, NOW) == "Off-site: copied 23 Nov"
    failed = OffsiteDay("tuesday", "failed", error="The off-site store x cannot be reached "
                        "(no network, or the server is down); the copy will be retried.")
    assert offsite_line(failed, NOW) == "Off-site: waiting (remote unreachable)"
    refused = OffsiteDay("monday", "failed", error="The off-site store x refused the keys "
                         "or password; set the remote again with the right ones.")
    assert offsite_line(refused, NOW) == "Off-site: waiting (keys refused)"
    assert offsite_line(OffsiteDay("friday", ""), NOW) == ""


def test_the_header_warns_when_nothing_reached_the_remote_for_two_days():
    never_used = [OffsiteDay("monday", "")]
    assert offsite_warning(never_used, NOW) is None
    fresh = [OffsiteDay("monday", "copied", copied_at=NOW - timedelta(days=1)),
             OffsiteDay("tuesday", "failed", backup_at=NOW - timedelta(hours=3), error="down")]
    assert offsite_warning(fresh, NOW) is None
    stale = [OffsiteDay("monday", "copied", copied_at=datetime(2026, 11, 22, 18, 0)),
             OffsiteDay("tuesday", "failed", backup_at=NOW - timedelta(days=1),
                        error="The server is down.")]
    assert offsite_warning(stale, NOW) == ("No backup has reached the off-site store since "
                                           "22 Nov: The server is down.")
    new_and_failing = [OffsiteDay("tuesday", "failed", backup_at=NOW - timedelta(days=3))]
    assert offsite_warning(new_and_failing, NOW).startswith(
        "No backup has reached the off-site store yet")


@pytest.fixture
def server(tmp_path):
    srv = Server("s3", tmp_path / "server").start()
    yield srv
    srv.stop()


@pytest.fixture
def window(memory_keyring, quiet_window):
    return quiet_window


def _open_offsite_page(qtbot, window):
    window.settings_action.trigger()
    [dialog] = [d for d in window.findChildren(SettingsDialog) if d.isVisible()]
    qtbot.waitUntil(lambda: not window.session.runner.busy, timeout=WAIT_MS)
    dialog.tabs.setCurrentWidget(dialog.offsite_page)
    return dialog, dialog.offsite_page


def _idle(window) -> bool:
    session = window.session
    return not session.backup_running and session.offsite_task is None and not session.runner.busy


def test_set_up_in_the_settings_and_every_backup_goes_off_site(qtbot, window, server, env):
    dialog, page = _open_offsite_page(qtbot, window)
    page.remote_edit.setText(server.remote_with("wrong-key"))
    page.test_button.click()
    qtbot.waitUntil(lambda: bool(page.result.message()), timeout=WAIT_MS)
    assert "refused the keys or password" in page.result.message()
    assert not env.settings.offsite_remotes

    page.remote_edit.setText(server.remote)
    page.test_button.click()
    qtbot.waitUntil(lambda: page.result.message().startswith("The connection works"),
                    timeout=WAIT_MS)
    page.save_button.click()
    qtbot.waitUntil(lambda: page.result.message().startswith("Saved"), timeout=WAIT_MS)
    assert SECRET not in page.remote_edit.text() and "bucket/shop" in page.remote_edit.text()
    assert SECRET not in env.paths.settings_file.read_text()
    dialog.reject()

    with qtbot.waitSignal(window.session.backupFinished, timeout=WAIT_MS) as finished:
        window.backup_button.click()
    qtbot.waitUntil(lambda: _idle(window), timeout=WAIT_MS)
    result = finished.args[0]
    remote_file = server.shop / "org_1_MEDP" / Path(result.path).name
    assert remote_file.read_bytes() == Path(result.path).read_bytes()
    cell = window.grid.cell(result.weekday)
    qtbot.waitUntil(lambda: "Off-site: copied 10:00" in cell.summary(), timeout=WAIT_MS)


def test_with_the_server_down_the_backup_stands_and_the_day_says_it_waits(
        qtbot, window, server, env):
    dialog, page = _open_offsite_page(qtbot, window)
    page.remote_edit.setText(server.remote)
    page.save_button.click()
    qtbot.waitUntil(lambda: page.result.message().startswith("Saved"), timeout=WAIT_MS)
    dialog.reject()
    server.stop()
    with qtbot.waitSignal(window.session.backupFinished, timeout=WAIT_MS) as finished:
        window.backup_button.click()
    qtbot.waitUntil(lambda: _idle(window), timeout=WAIT_MS)
    assert finished.args[0].ok and Path(finished.args[0].path).is_file()
    cell = window.grid.cell(finished.args[0].weekday)
    qtbot.waitUntil(lambda: "Off-site: waiting (remote unreachable)" in cell.summary(),
                    timeout=WAIT_MS)
    assert "cannot be reached" in window.notice.message()

    server.start()  # the network is back: the copy goes now, not after its backoff
    seen = []
    window.session.offsiteStarted.connect(lambda: seen.append(cell.summary()))
    window.session.network_back()
    qtbot.waitUntil(lambda: "Off-site: copied 10:00" in cell.summary(), timeout=WAIT_MS)
    assert len(seen) == 1 and "Off-site: copying…" in seen[0]


def test_monthly_copies_are_chosen_on_the_off_site_page_and_saved_with_the_dialog(
        qtbot, window, env):
    dialog, page = _open_offsite_page(qtbot, window)
    assert not page.monthly_check.isChecked() and not page.monthly_spin.isEnabled()
    page.monthly_check.setChecked(True)
    assert page.monthly_spin.isEnabled() and page.monthly_spin.value() == 12
    page.monthly_spin.setValue(6)
    with qtbot.waitSignal(window.session.settingsChanged, timeout=WAIT_MS):
        dialog.save_button.click()
    assert json.loads(env.paths.settings_file.read_text())["offsite_monthly"] == {"1": 6}

    dialog, page = _open_offsite_page(qtbot, window)
    assert page.monthly_check.isChecked() and page.monthly_spin.value() == 6
    page.monthly_check.setChecked(False)
    with qtbot.waitSignal(window.session.settingsChanged, timeout=WAIT_MS):
        dialog.save_button.click()
    assert json.loads(env.paths.settings_file.read_text())["offsite_monthly"] == {}


# --- restoring from off-site: the wizard's "Stored off-site" copies ------------------------------


def _save_remote(qtbot, window, remote: str) -> None:
    dialog, page = _open_offsite_page(qtbot, window)
    page.remote_edit.setText(remote)
    page.save_button.click()
    qtbot.waitUntil(lambda: page.result.message().startswith("Saved"), timeout=WAIT_MS)
    dialog.reject()


def _backed_up_off_site(qtbot, window) -> Path:
    """A backup made now and copied off-site; its local file."""
    with qtbot.waitSignal(window.session.backupFinished, timeout=WAIT_MS) as finished:
        window.backup_button.click()
    qtbot.waitUntil(lambda: _idle(window), timeout=WAIT_MS)
    return Path(finished.args[0].path)


def _open_wizard(qtbot, window) -> RestoreWizard:
    launcher = window.findChild(RestoreLauncher, "restoreLauncher")
    with qtbot.waitSignal(launcher.wizardOpened, timeout=WAIT_MS) as opened:
        window.restore_action.trigger()
    return opened.args[0]


def _offsite_item(qtbot, wizard: RestoreWizard, weekday: str):
    tree = wizard.choose_page.tree

    def find():
        for g in range(tree.topLevelItemCount()):
            group = tree.topLevelItem(g)
            for i in range(group.childCount()):
                if group.child(i).data(0, OFFSITE_ROLE) == weekday:
                    return group.child(i)
        return None

    qtbot.waitUntil(lambda: find() is not None, timeout=WAIT_MS)
    return find()


@pytest.fixture(params=["folder", "s3"])
def any_server(request, tmp_path):
    srv = Server(request.param, tmp_path / "server").start()
    yield srv
    srv.stop()


def test_the_wizard_fetches_a_copy_stored_off_site_into_a_private_file_and_checks_it(
        qtbot, window, any_server, env):
    _save_remote(qtbot, window, any_server.remote)
    local = _backed_up_off_site(qtbot, window)
    local.unlink()  # the disk died: only the remote still has the day's backup
    wizard = _open_wizard(qtbot, window)
    item = _offsite_item(qtbot, wizard, "wednesday")
    remote = (any_server.shop / "org_1_MEDP" / local.name).stat()
    written = datetime.fromtimestamp(remote.st_mtime).astimezone(env.clock().tzinfo)
    assert item.text(0) == "Wednesday"
    assert item.text(1) == date_time(written.replace(tzinfo=None))  # when it was written
    assert item.text(3) == human_size(remote.st_size)
    wizard.choose_page.tree.setCurrentItem(item)
    assert wizard.button(QWizard.WizardButton.NextButton).isEnabled()
    wizard.button(QWizard.WizardButton.NextButton).click()
    qtbot.waitUntil(lambda: wizard.currentId() == CHECK and not wizard.check_page.running,
                    timeout=WAIT_MS)
    fetched = wizard.path
    assert fetched.name == local.name and fetched.parent.parent == scratch_parent()
    assert fetched.stat().st_mode & 0o077 == 0 and fetched.parent.stat().st_mode & 0o077 == 0
    assert wizard.plan is not None and wizard.plan.ok, wizard.plan
    engine = window.session.engine
    [fetch] = [e for e in recent(engine, ensure_tables(engine)[1], 1) if e.action == "download"]
    assert (fetch.outcome, fetch.trigger, fetch.day_of_week) == ("success", "manual",
                                                                 "wednesday")
    wizard.reject()
    qtbot.waitUntil(lambda: not fetched.parent.exists(), timeout=WAIT_MS)
    assert not local.exists()  # nothing was put back into the backup folder


def test_the_wizard_shows_how_far_the_download_got(qtbot, window, server, monkeypatch):
    _save_remote(qtbot, window, server.remote)
    local = _backed_up_off_site(qtbot, window)
    wizard = _open_wizard(qtbot, window)
    page = wizard.choose_page
    page.tree.setCurrentItem(_offsite_item(qtbot, wizard, "wednesday"))
    # rclone reads its flags from RCLONE_* variables: the download takes about four seconds.
    monkeypatch.setenv("RCLONE_BWLIMIT", f"{max(local.stat().st_size // 4, 4096)}B")
    seen: list[str] = []
    page.busy.valueChanged.connect(lambda _value: seen.append(page.busy.format())
                                   if page.busy.format().endswith("%") else None)
    wizard.button(QWizard.WizardButton.NextButton).click()
    qtbot.waitUntil(lambda: bool(seen) and not seen[-1].endswith(" 0%"), timeout=WAIT_MS)
    page.grab().save("/tmp/offperf-wizard-download.png")
    qtbot.waitUntil(lambda: wizard.currentId() == CHECK and not wizard.check_page.running,
                    timeout=WAIT_MS)
    percents = [int(words.rsplit(" ", 1)[1].rstrip("%")) for words in seen]
    assert len(set(percents)) >= 3 and percents == sorted(percents) and percents[-1] == 100
    assert seen[0].startswith("Downloading Wednesday's copy (")
    assert wizard.plan is not None and wizard.plan.ok
    wizard.reject()


def test_a_download_from_off_site_can_be_stopped_and_keeps_nothing(qtbot, window, server, env):
    _save_remote(qtbot, window, server.remote)
    _backed_up_off_site(qtbot, window)
    wizard = _open_wizard(qtbot, window)
    page = wizard.choose_page
    page.tree.setCurrentItem(_offsite_item(qtbot, wizard, "wednesday"))
    server.stop()
    with socket.socket() as silent:  # the server's port answers nothing: the download hangs
        silent.bind(("127.0.0.1", server.port))
        silent.listen()
        wizard.button(QWizard.WizardButton.NextButton).click()
        qtbot.waitUntil(page.stop_button.isVisible, timeout=WAIT_MS)
        assert "Downloading Wednesday's copy (" in page.busy.format()
        assert page.message.message() == page.busy.format()
        assert not wizard.button(QWizard.WizardButton.NextButton).isEnabled()
        page.stop_button.click()
        qtbot.waitUntil(lambda: not page.stop_button.isVisible(), timeout=WAIT_MS)
    assert page.message.message() == "The download was stopped; nothing was kept."
    assert wizard.currentId() == CHOOSE and not list(page.scratch.path.glob("*.zip*"))
    wizard.reject()
