"""One console per user: a second launch brings the running window forward, then exits.

Two consoles of the same person would show two tray icons and run two schedulers. The first
launch takes a lock file in its data folder (QLockFile: a lock whose holder died is taken
over, so a crash never blocks the next start) and listens on a local socket; a later launch
fails to take the lock, connects, says "show", and ends. On Windows the first launch also
creates a named mutex, which the installer's ``AppMutex`` looks for so that nobody upgrades
or uninstalls a running console.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from pathlib import Path

from PySide6.QtCore import QDeadlineTimer, QLockFile, QObject, QThread, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger(__name__)

# The installer's AppMutex names the same mutex (installer/windows/desktop-backup.iss).
WINDOWS_MUTEX = "DesktopBackupConsole"
SHOW = b"show\n"
CONNECT_MS = 3000


def guard_name(data_dir: Path) -> str:
    """The socket's name: one per data folder, so each user (and each test home) has its own."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return f"desktop-backup-{digest}"


class SingleInstance(QObject):
    """Hold the lock and the socket for as long as this object lives.

    ``acquire()`` is True for the first console; False means another console was asked to
    come forward (``showRequested`` is emitted in that one). The lock is released with
    ``release()`` or when the process ends.
    """

    showRequested = Signal()

    def __init__(self, data_dir: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.name = guard_name(data_dir)
        self.lock = QLockFile(str(data_dir / "console.lock"))
        self.lock.setStaleLockTime(0)  # stale only when its process is gone, never by age
        self.server: QLocalServer | None = None
        self._mutex: object | None = None

    def acquire(self) -> bool:
        """Be the one console, or hand over to the one that is running."""
        if self.lock.tryLock(0):
            self._listen()
            self._mutex = windows_mutex()
            return True
        if self.ask_running_to_show():
            return False
        # The lock's holder does not answer (it is still starting, or stuck): do not start a
        # second scheduler beside it either.
        log.warning("Another console holds %s but did not answer", self.lock.fileName())
        return False

    def ask_running_to_show(self) -> bool:
        """Tell the running console to bring its window forward; True when it heard."""
        deadline = QDeadlineTimer(CONNECT_MS)
        while not deadline.hasExpired():
            socket = QLocalSocket()
            socket.connectToServer(self.name)
            if socket.waitForConnected(200):
                socket.write(SHOW)
                sent = socket.waitForBytesWritten(CONNECT_MS)
                socket.disconnectFromServer()
                return sent
            QThread.msleep(100)
        return False

    def release(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        self.lock.unlock()

    def _listen(self) -> None:
        # We hold the lock, so a socket file left by a crashed console is stale: remove it.
        QLocalServer.removeServer(self.name)
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            log.warning("A second launch cannot reach this console: %s", server.errorString())
            return
        server.newConnection.connect(self._accept)
        self.server = server

    def _accept(self) -> None:
        # The caller writes its one line right after connecting: read it here and hang up,
        # rather than keep sockets (and their signals) alive between events.
        assert self.server is not None
        while (socket := self.server.nextPendingConnection()) is not None:
            if socket.bytesAvailable() or socket.waitForReadyRead(1000):
                asked = bytes(socket.readAll().data()).startswith(SHOW.strip())
            else:
                asked = False
            socket.abort()
            socket.deleteLater()
            if asked:
                log.info("Another launch asked for this console's window; bringing it forward")
                self.showRequested.emit()


def windows_mutex() -> object | None:
    """The named mutex the Windows installer's AppMutex checks; None elsewhere."""
    if sys.platform != "win32":
        return None
    import ctypes

    handle = ctypes.windll.kernel32.CreateMutexW(None, False, WINDOWS_MUTEX)
    return handle or None
