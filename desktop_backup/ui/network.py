"""Knowing when the network comes back, so queued off-site copies go at once instead of at
the retry timer's next tick.

Qt's QNetworkInformation tells through a platform backend (NetworkManager, Windows' network
list, macOS' SystemConfiguration); where there is none (a minimal Linux), and on the offscreen
platform (tests and CI: no desktop session, and no retry that the test did not ask for), this
says so and the session's timer alone retries.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtGui import QGuiApplication
from PySide6.QtNetwork import QNetworkInformation

ONLINE = QNetworkInformation.Reachability.Online


def watch_reachability(receiver: QObject, network_back: Callable[[], object]) -> bool:
    """Call `network_back` each time the network becomes reachable, for as long as
    `receiver` lives; False where this platform has no backend that can tell."""
    if QGuiApplication.platformName() == "offscreen":
        return False
    if not QNetworkInformation.loadDefaultBackend():
        return False
    info = QNetworkInformation.instance()
    if info is None or not info.supports(QNetworkInformation.Feature.Reachability):
        return False
    relay = _Relay(receiver, network_back)
    info.reachabilityChanged.connect(relay.changed)
    return True


class _Relay(QObject):
    """Owned by the receiver, so the connection ends with it."""

    def __init__(self, receiver: QObject, network_back: Callable[[], object]) -> None:
        super().__init__(receiver)
        self.network_back = network_back

    def changed(self, reachability: QNetworkInformation.Reachability) -> None:
        if reachability == ONLINE:
            self.network_back()
