"""Help → Guide: how backups work, how to restore a day, where the files are, in one page.

Short on purpose: a shop owner reads it once. It links to the log folder (what support asks
for first) and, where the documentation is installed beside the program, to the restore
documentation for support staff.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from desktop_backup.restore import RESTORE_POINTS_DIR
from desktop_backup.ui.about import open_log_folder
from desktop_backup.ui.env import Env
from desktop_backup.ui.theme import icon

LOG_LINK, RESTORE_DOC_LINK = "guide:log-folder", "guide:restore-doc"


def restore_doc() -> Path | None:
    """docs/restore.md where the program runs from a checkout or ships its docs; else None."""
    path = Path(__file__).resolve().parents[2] / "docs" / "restore.md"
    return path if path.is_file() else None


def guide_html(env: Env) -> str:
    """The guide's text, with this computer's own folders in it."""
    folder = env.backup_folder
    places = [("Backups, one file per weekday", folder),
              ("Restore points (the data from before each restore)", folder / RESTORE_POINTS_DIR),
              ("The log, for support", env.paths.log_dir),
              ("Settings (no passwords)", env.paths.settings_file)]
    rows = "".join(f"<li>{escape(what)}:<br><code>{escape(str(where))}</code></li>"
                   for what, where in places)
    doc = (f' · <a href="{RESTORE_DOC_LINK}">The restore documentation</a>'
           if restore_doc() else "")
    return (
        "<h3>How backups work</h3>"
        "<p>Once a day, when an admin or owner logs in (or at the time set in Settings), "
        "the organization's data is saved in one file per weekday. Next Monday's backup "
        "replaces this Monday's, so the last seven days are always kept. A backup that fails "
        "never harms the copy that was there.</p>"
        "<h3>How to restore a day</h3>"
        "<ol><li>Under <b>This week</b>, click <b>Restore this day…</b> on the day to go back "
        "to (or File ▸ Restore…).</li>"
        "<li>The backup is checked, and you see table by table what would change. Nothing "
        "has changed yet.</li>"
        "<li>Type the organization's code to confirm. First the data as it is now is saved "
        "as a <i>restore point</i>; restoring that file undoes the restore. (An organization "
        "with no data here yet has nothing to save, so it gets none.)</li></ol>"
        f"<h3>Where the files are</h3><ul>{rows}</ul>"
        f'<p><a href="{LOG_LINK}">Open the log folder</a>{doc}</p>')


class GuideDialog(QDialog):
    """The guide, with working links to the log folder and the restore documentation."""

    def __init__(self, env: Env, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.env = env
        self.setObjectName("guideDialog")
        self.setWindowTitle("Desktop Backup – guide")
        self.setWindowIcon(icon("app"))
        self.text = QTextBrowser(self)
        self.text.setObjectName("guideText")
        self.text.setOpenLinks(False)
        self.text.setHtml(guide_html(env))
        self.text.anchorClicked.connect(self.follow)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text, 1)
        layout.addWidget(buttons)
        metrics = self.fontMetrics()
        self.resize(metrics.averageCharWidth() * 90, metrics.height() * 34)

    def follow(self, url: QUrl) -> bool:
        """A link in the guide: the log folder or the restore documentation."""
        if url.toString() == LOG_LINK:
            return open_log_folder(self.env, self)
        doc = restore_doc()
        if url.toString() == RESTORE_DOC_LINK and doc is not None:
            return self.env.prompts.open_folder(doc)  # opens any path with its program
        return False
