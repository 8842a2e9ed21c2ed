"""Third-party licence notices ship with the app and are shown in Help → About."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel

from desktop_backup.notices import third_party_notices
from desktop_backup.selfcheck import PASS, notices_step
from desktop_backup.ui.about import AboutDialog

pytest_plugins = ["tests.ui_support"]


def test_every_lgpl_package_comes_with_the_full_licence_text():
    notices = {n.package: n for n in third_party_notices()}
    for package in ("PySide6-Essentials", "shiboken6", "psycopg", "psycopg-binary"):
        notice = notices[package]
        assert "LGPL-3.0" in notice.licence
        joined = "\n".join(text for _name, text in notice.texts)
        assert "GNU LESSER GENERAL PUBLIC LICENSE" in joined, package
    # PySide6's own metadata has no text: the GNU texts this package ships stand in for it.
    assert [name for name, _ in notices["PySide6-Essentials"].texts] == [
        "LGPL-3.0.txt", "GPL-3.0.txt"]
    assert all(n.texts for n in notices.values()), [p for p, n in notices.items() if not n.texts]


def test_the_self_check_proves_the_notices_are_in_the_installation():
    step = notices_step()
    assert step.outcome == PASS, step.detail
    assert "PySide6-Essentials" in step.detail and "psycopg" in step.detail


def test_about_opens_the_notices(qtbot, env):
    about = AboutDialog(env)
    qtbot.addWidget(about)
    about.show()
    labels = " ".join(label.text() for label in about.findChildren(QLabel))
    assert "GNU Lesser General Public License v3" in labels  # said in About itself
    about.notices_button.click()
    dialog = about.notices
    assert dialog is not None and dialog.isVisible()
    text = dialog.text.toPlainText()
    assert "- PySide6-Essentials 6." in text and "- psycopg 3." in text
    assert text.count("GNU LESSER GENERAL PUBLIC LICENSE") >= 3
    assert dialog.text.isReadOnly()
