"""Keep macOS from napping the console while a backup runs (App Nap delays hidden apps)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


@contextmanager
def kept_awake(reason: str) -> Iterator[None]:
    """An activity assertion for the duration: the scheduled backup runs while the window is
    hidden, which is exactly when App Nap would throttle it. Elsewhere, nothing to do.

    Info.plist's LSAppNapIsDisabled covers the app as a whole; this also holds where that key
    is not honoured (a terminal install, a future macOS).
    """
    if sys.platform != "darwin":
        yield
        return
    try:
        import appnope
    except ImportError:  # an install without the macOS-only dependency: run anyway
        log.warning("appnope is missing; App Nap may delay this backup")
        yield
        return
    with appnope.nope_scope(reason=reason):
        yield
