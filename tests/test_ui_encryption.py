"""The window's encryption: the settings' Encryption page, the recovery sheet shown once
(saved as PDF or text, printed, retyped), and the header's warning until it is confirmed."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from pyrage import x25519

from desktop_backup import usecases
from desktop_backup.organizations import Organization
from desktop_backup.orgkeys import delete_org_key, fingerprint, load_org_key, recovery_sheet_text
from desktop_backup.ui.history_table import STATUS
from desktop_backup.ui.recovery_sheet import KEEP_IT, sheet_pdf
from desktop_backup.ui.restore_context import CHECK
from desktop_backup.ui.restore_wizard import RestoreLauncher
from desktop_backup.ui.settings_dialog import SettingsDialog
from tests.pdf_text import pdf_lines

pytest_plugins = ["tests.ui_support", "tests.keyring_fixtures"]
WAIT_MS = 15_000
SUPPORT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"  # age's spec example


@pytest.fixture
def window(memory_keyring, quiet_window):
    return quiet_window


def open_encryption_page(qtbot, window):
    window.settings_action.trigger()
    [dialog] = [d for d in window.findChildren(SettingsDialog) if d.isVisible()]
    dialog.tabs.setCurrentWidget(dialog.encryption_page)
    page = dialog.encryption_page
    qtbot.waitUntil(lambda: page.status is not None and page.task is None, timeout=WAIT_MS)
    return dialog, page


def idle(window, page) -> bool:
    return page.task is None and not window.session.runner.busy


def test_turned_on_the_sheet_is_shown_saved_printed_and_retyped(qtbot, window, prompts,
                                                               tmp_path):
    dialog, page = open_encryption_page(qtbot, window)
    assert "are not encrypted" in page.state_line.message()
    assert page.on_button.isEnabled() and not page.off_button.isEnabled()
    page.on_button.click()
    qtbot.waitUntil(lambda: page.sheet_dialog is not None and page.sheet_dialog.isVisible(),
                    timeout=WAIT_MS)
    sheet = page.sheet_dialog
    key = str(load_org_key(1))
    assert key in sheet.text.toPlainText() and "Organization code: MEDP" in sheet.sheet
    assert sheet.findChild(type(page.state_line), "recoverySheetWarning").message() == KEEP_IT
    dialog.grab().save(str(tmp_path / "encryption-page.png"))
    sheet.grab().save(str(tmp_path / "recovery-sheet.png"))

    prompts.sheet_to = tmp_path / "kept" / "sheet"
    sheet.pdf_button.click()
    sheet.text_button.click()
    pdf, text = tmp_path / "kept" / "sheet.pdf", tmp_path / "kept" / "sheet.txt"
    assert pdf.read_bytes().startswith(b"%PDF") and key in pdf_lines(pdf.read_bytes())
    assert text.read_text() == sheet.sheet
    assert {oct(f.stat().st_mode & 0o777) for f in (pdf, text)} == {"0o600"}
    sheet.print_button.click()
    assert prompts.printed == [sheet.sheet]

    assert not sheet.done_button.isEnabled()
    qtbot.keyClicks(sheet.retype_edit, "QQQQQQ")
    assert not sheet.done_button.isEnabled()
    sheet.later_button.click()  # closed without confirming: the header keeps warning
    qtbot.waitUntil(lambda: idle(window, page), timeout=WAIT_MS)
    assert "are encrypted" in page.state_line.message()
    assert "holds the key" in page.key_line.message()
    qtbot.waitUntil(lambda: usecases.SHEET_NOT_CONFIRMED in window.warning_banner.message(),
                    timeout=WAIT_MS)
    window.grab().save(str(tmp_path / "amber-header.png"))

    page.sheet_button.click()  # Write a new recovery sheet…
    qtbot.waitUntil(lambda: page.sheet_dialog is not sheet and page.sheet_dialog.isVisible(),
                    timeout=WAIT_MS)
    again = page.sheet_dialog
    qtbot.keyClicks(again.retype_edit, key[-6:].lower())
    assert again.done_button.isEnabled()
    with qtbot.waitSignal(again.accepted, timeout=WAIT_MS):
        again.done_button.click()
    qtbot.waitUntil(lambda: idle(window, page), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: usecases.SHEET_NOT_CONFIRMED not in window.warning_banner.message(),
                    timeout=WAIT_MS)
    assert window.session.overview.warnings.count(usecases.SHEET_NOT_CONFIRMED) == 0
    dialog.reject()


def test_support_keys_are_added_and_removed_and_turning_off_asks(qtbot, window, prompts,
                                                                tmp_path):
    usecases.turn_encryption_on(window.session.site(), window.session.user, window.session.org)
    dialog, page = open_encryption_page(qtbot, window)
    assert page.recipients.count() == 1 and fingerprint(page.status.public_key) in \
        page.recipients.item(0).text()
    page.recipient_edit.setText("age1notakey")
    page.add_button.click()
    qtbot.waitUntil(lambda: idle(window, page), timeout=WAIT_MS)
    assert "is not an age public key" in page.result.message()
    page.recipient_edit.setText(SUPPORT)
    page.add_button.click()
    qtbot.waitUntil(lambda: idle(window, page) and page.recipients.count() == 2,
                    timeout=WAIT_MS)
    assert fingerprint(SUPPORT) in page.recipients.item(1).text()
    assert page.status.fingerprints[1] == fingerprint(SUPPORT)
    dialog.grab().save(str(tmp_path / "encryption-page-support.png"))
    page.recipients.setCurrentRow(1)
    page.remove_button.click()
    qtbot.waitUntil(lambda: idle(window, page) and page.recipients.count() == 1,
                    timeout=WAIT_MS)
    assert "affects new backups only; backups already made can still be opened with it" \
        in page.result.message()

    prompts.encryption_off_answer = False
    page.off_button.click()
    assert prompts.asked[-1] == "encryption off Medplus Pharmacy, Pune" and page.status.enabled
    prompts.encryption_off_answer = True
    page.off_button.click()
    qtbot.waitUntil(lambda: idle(window, page) and not page.status.enabled, timeout=WAIT_MS)
    assert "stay readable with the key" in page.result.message()
    assert page.on_button.isEnabled()
    dialog.reject()


def test_without_a_keyring_the_page_says_so_and_encryption_stays_off(
        qtbot, unusable_keyring, quiet_window):
    window = quiet_window
    dialog, page = open_encryption_page(qtbot, window)
    assert "cannot be kept safely" in page.key_line.message() \
        or "locked or not answering" in page.key_line.message()
    assert not page.on_button.isEnabled()
    page.turn_on()  # even when asked directly
    qtbot.waitUntil(lambda: idle(window, page), timeout=WAIT_MS)
    assert not page.status.enabled and page.sheet_dialog is None
    dialog.reject()


def test_the_pdf_holds_the_sheet_line_by_line(qapp):
    text = "# Organization: Medical Plus\n\nAGE-SECRET-KEY-1QQQ\n"
    assert pdf_lines(sheet_pdf(text)) == ["# Organization: Medical Plus", "AGE-SECRET-KEY-1QQQ"]


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (Debian's "
                    "poppler-utils) is not installed; .ci/run installs it")
def test_the_printed_sheet_is_legible_and_fits_the_page(qapp, tmp_path):
    """Read back by a real PDF reader: the key in type of at least 8 points, inside the page
    (a sheet laid out at the screen's resolution printed as a 2-point smudge in a corner)."""
    identity = x25519.Identity.generate()
    org = Organization(1, "MEDP", "Medical Plus", "active", True, None, {})
    pdf = tmp_path / "sheet.pdf"
    pdf.write_bytes(sheet_pdf(recovery_sheet_text(identity, org, datetime(2026, 12, 2, 13, 0))))
    boxes = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True,
                           text=True, check=True).stdout
    page = re.search(r'<page width="([\d.]+)" height="([\d.]+)"', boxes)
    words = [(float(x0), float(y0), float(x1), float(y1), word) for x0, y0, x1, y1, word in
             re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" '
                        r'yMax="([\d.]+)">([^<]*)</word>', boxes)]
    key = [w for w in words if w[4] == str(identity)]
    assert len(key) == 1 and key[0][3] - key[0][1] >= 8
    assert max(w[2] for w in words) <= float(page.group(1))


def test_the_restore_wizard_asks_for_the_recovery_key_of_an_encrypted_backup(
        qtbot, window, prompts, tmp_path):
    session = window.session
    usecases.turn_encryption_on(session.site(), session.user, session.org)
    with qtbot.waitSignal(session.backupFinished, timeout=WAIT_MS) as finished:
        window.backup_button.click()
    qtbot.waitUntil(lambda: not session.backup_running and not session.runner.busy,
                    timeout=WAIT_MS)
    path = Path(finished.args[0].path)
    assert path.name == "org_MEDP_wednesday_backup.zip.age"
    cell = window.grid.cell("wednesday")
    qtbot.waitUntil(lambda: "encrypted" in cell.summary(), timeout=WAIT_MS)
    window.grab().save(str(tmp_path / "encrypted-day.png"))
    model = window.history.model
    [row] = [r for r in range(model.rowCount()) if model.entries[r].action == "backup"]
    status = model.data(model.index(row, STATUS))
    assert status.startswith("Backup succeeded (encrypted for the key ")
    assert fingerprint(load_org_key(1).to_public()) in status
    assert model.note(model.entries[row]) == ""  # its file holds it: the row can act on it
    made = datetime(2026, 11, 25, 10, 0)
    right = recovery_sheet_text(load_org_key(1), session.org, made)
    delete_org_key(1)  # a workstation that never imported the sheet

    launcher = window.findChild(RestoreLauncher, "restoreLauncher")
    with qtbot.waitSignal(launcher.wizardOpened, timeout=WAIT_MS) as opened:
        window.file_action("restore", path)
    wizard = opened.args[0]
    page = wizard.check_page
    qtbot.waitUntil(lambda: not page.running and wizard.currentId() == CHECK
                    and page.key_box.isVisible(), timeout=WAIT_MS)
    assert wizard.plan.key_missing and "encrypted" in page.verdict.message()
    assert not wizard.button(wizard.WizardButton.NextButton).isEnabled()
    box = page.key_box

    def try_key(text: str) -> str:
        box.paste_edit.setPlainText(text)
        box.use_button.click()
        qtbot.waitUntil(lambda: box.task is None, timeout=WAIT_MS)
        return box.message.message()

    assert "No recovery key was found" in try_key("my password is hunter2")
    other_org = usecases.organization(session.site(), 2)
    assert "belongs to organization 2" in try_key(
        recovery_sheet_text(x25519.Identity.generate(), other_org, made))
    assert "does not open org_MEDP_wednesday_backup.zip.age" in try_key(
        recovery_sheet_text(x25519.Identity.generate(), session.org, made))
    assert "mistyped or damaged" in try_key(right.replace(right.strip()[-3:], "QQQ"))
    assert load_org_key(1) is None and page.key_box.isVisible()  # nothing kept, same page
    wizard.grab().save(str(tmp_path / "wizard-key-page.png"))

    prompts.sheet_file = tmp_path / "sheet.txt"
    prompts.sheet_file.write_text(right)
    box.file_button.click()  # the sheet's file: tried at once, kept, checked again
    qtbot.waitUntil(lambda: wizard.plan is not None and wizard.plan.ok and not page.running,
                    timeout=WAIT_MS)
    assert load_org_key(1) is not None and not box.isVisible()
    assert box.paste_edit.toPlainText() == ""
    line = usecases.load_overview(session.site(), 1, Path(tmp_path)).history[0]
    assert "imported on this workstation" in line.message
    wizard.reject()
    window.file_action("verify", path)
    qtbot.waitUntil(lambda: "encrypted for the key" in window.notice.message(), timeout=WAIT_MS)
