"""The log file: what support reads after something went wrong, with no secret in it.

One rotating file under the user's log folder. Every record passes a filter that blanks
passwords in database URLs and in ``password=…`` style text before it is written, so a
driver's error message that quotes a connection string cannot leak one.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
from pathlib import Path

from desktop_backup.config import AppPaths

LOG_NAME = "desktop-backup.log"
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]*):(?P<secret>[^@\s]+)@",
                           re.IGNORECASE)
_KEY_VALUE = re.compile(r"(?P<key>pass(?:word|wd)?|pwd|secret|token)(?P<sep>\s*[=:]\s*)"
                        r"(?P<secret>\"[^\"]*\"|'[^']*'|[^\s,;)]+)", re.IGNORECASE)


def redact(text: str) -> str:
    """The text with every password-looking value replaced by ***."""
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('scheme')}:***@", text)
    return _KEY_VALUE.sub(lambda m: f"{m.group('key')}{m.group('sep')}***", text)


class RedactingFilter(logging.Filter):
    """Scrubs the formatted message (arguments included) and any traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info:
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        return True


def setup_logging(paths: AppPaths, level: int = logging.INFO) -> Path:
    """Send the package's log to the rotating file (once per process); returns its path."""
    folder = paths.log_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOG_NAME
    logger = logging.getLogger("desktop_backup")
    for handler in list(logger.handlers):
        if getattr(handler, "desktop_backup_log", False):
            if handler.baseFilename == str(path.resolve()):
                return path
            logger.removeHandler(handler)  # another folder (tests, a changed setting)
            handler.close()
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=5,
                                                   encoding="utf-8")
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"))
    handler.addFilter(RedactingFilter())
    handler.desktop_backup_log = True
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        os.chmod(path, 0o600)
    except OSError:
        pass
    return path
