"""The settings' Scope page: the same map as `desktop-backup scope --org`, read-only."""

from __future__ import annotations

from PySide6.QtCore import Qt

from desktop_backup.ui.settings_dialog import SettingsDialog

pytest_plugins = ["tests.ui_support", "tests.keyring_fixtures"]
WAIT_MS = 15_000


def test_the_scope_page_lists_every_table_with_its_status_and_rows(qtbot, quiet_window,
                                                                  tmp_path):
    window = quiet_window
    window.settings_action.trigger()
    [dialog] = [d for d in window.findChildren(SettingsDialog) if d.isVisible()]
    page = dialog.scope_page
    qtbot.waitUntil(lambda: page.model.rowCount() > 0, timeout=WAIT_MS)
    dialog.tabs.setCurrentWidget(page)
    model = page.model
    cells = {model.index(r, 0).data(): [model.index(r, c).data() for c in range(1, 4)]
             for r in range(model.rowCount())}
    assert cells["customers"][0] == "backed up" and int(cells["customers"][1].replace(",", ""))
    assert cells["states"][0] == "shared" and cells["states"][1] == ""
    assert cells["user_permissions"][2].startswith("user_permissions.user_id -> users.user_id")
    assert page.summary.text() == "21 tables backed up; no table left out."
    assert not model.flags(model.index(0, 0)) & Qt.ItemFlag.ItemIsEditable  # read-only
    dialog.resize(1000, 560)
    dialog.grab().save(str(tmp_path / "scope-page.png"))
    dialog.grab().save("/tmp/scope-shot.png")
    dialog.reject()
