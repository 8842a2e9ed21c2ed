"""Run a core call off the UI thread and hand its result back on the UI thread.

One small helper serves login, connection tests, backups, verification and every database
read the window makes: a :class:`Worker` (a QObject moved to its own QThread) calls the core
function, and a :class:`Task` living on the UI thread receives its ``progress``, ``finished``
and ``failed`` signals and calls the caller's callbacks there. The relay is what makes plain
lambdas safe: a lambda connected straight to the worker would run on the worker's thread.

The core functions know nothing of threads: a call that wants progress receives a
``progress`` callable (the worker's signal) and whatever cancel flag the caller passed in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from desktop_backup.errors import DesktopBackupError

log = logging.getLogger(__name__)

UNEXPECTED = ("Something unexpected went wrong ({name}: {detail}). Nothing was changed; "
              "please send the log file to support.")


class _Box:
    """Carries a value through a queued signal as a plain Python object.

    PySide6 6.12 mishandles references to the singletons ``True`` and ``None`` in some
    conversions (that release is excluded in pyproject.toml); a result such as
    ``daily_backup_due(...)`` or a ``None`` from ``delete_backup`` therefore never crosses
    the thread boundary bare.
    """

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value


class Worker(QObject):
    """Calls one function on the thread it was moved to, and reports how it ended.

    ``finished`` carries the result and ``failed`` the message and the exception, each in a
    box (see :class:`_Box`); ``progress`` carries whatever the core reports (a Progress).
    """

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str, object)

    def __init__(self, call: Callable[[Callable[[Any], None]], Any]) -> None:
        super().__init__()
        self._call = call

    @Slot()
    def run(self) -> None:
        try:
            result = self._call(lambda value: self.progress.emit(_Box(value)))
        except DesktopBackupError as exc:
            self.failed.emit(str(exc), _Box(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must reach the user, not kill the thread
            log.exception("Background task failed")
            self.failed.emit(UNEXPECTED.format(name=type(exc).__name__, detail=exc), _Box(exc))
        else:
            self.finished.emit(_Box(result))


class Task(QObject):
    """The UI-thread side of one background call.

    Register what to do with :meth:`on_finished`, :meth:`on_failed` and :meth:`on_progress`;
    the callbacks run on the UI thread with the plain values. The argument-less signals
    ``finished``, ``failed(message)`` and ``done`` (after either, once the thread has
    stopped) are for waiting on, in tests and event loops.
    """

    finished = Signal()
    failed = Signal(str)
    done = Signal()

    def __init__(self, name: str, on_stopped: Callable[[Task], None]) -> None:
        super().__init__()
        self.name = name
        self._on_stopped = on_stopped
        self.ok: bool | None = None
        self.result: Any = None
        self.message = ""
        self.error: BaseException | None = None
        self.thread: QThread | None = None
        self.worker: Worker | None = None
        self._finished: list[Callable[[Any], None]] = []
        self._failed: list[Callable[[str, BaseException | None], None]] = []
        self._progress: list[Callable[[Any], None]] = []

    def on_finished(self, callback: Callable[[Any], None]) -> Task:
        self._finished.append(callback)
        return self

    def on_failed(self, callback: Callable[[str, BaseException | None], None]) -> Task:
        self._failed.append(callback)
        return self

    def on_progress(self, callback: Callable[[Any], None]) -> Task:
        self._progress.append(callback)
        return self

    @Slot(object)
    def _relay_progress(self, box: _Box) -> None:
        for callback in list(self._progress):
            callback(box.value)

    @Slot(object)
    def _relay_finished(self, box: _Box) -> None:
        self.ok, self.result = True, box.value
        for callback in list(self._finished):
            callback(box.value)
        self.finished.emit()

    @Slot(str, object)
    def _relay_failed(self, message: str, box: _Box) -> None:
        error = box.value if isinstance(box.value, BaseException) else None
        self.ok, self.message, self.error = False, message, error
        for callback in list(self._failed):
            callback(message, error)
        self.failed.emit(message)

    @Slot()
    def _thread_stopped(self) -> None:
        self._on_stopped(self)

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.isRunning()


class TaskRunner(QObject):
    """Starts tasks and keeps them alive until their threads end; one per window.

    Keeping the references here (not in a global) means a closed window can wait for its
    own work with :meth:`shutdown` before Qt destroys the threads.
    """

    idle = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tasks: set[Task] = set()

    def run(self, name: str, fn: Callable[..., Any], *args: Any,
            with_progress: bool = False, **kwargs: Any) -> Task:
        """Call ``fn(*args, **kwargs)`` on a new thread; with_progress adds ``progress=``."""

        def call(emit: Callable[[Any], None]) -> Any:
            if with_progress:
                return fn(*args, progress=emit, **kwargs)
            return fn(*args, **kwargs)

        task = Task(name, self._forget)
        thread = QThread()
        thread.setObjectName(f"task:{name}")
        worker = Worker(call)
        worker.moveToThread(thread)
        task.thread, task.worker = thread, worker
        worker.progress.connect(task._relay_progress)
        worker.finished.connect(task._relay_finished)
        worker.failed.connect(task._relay_failed)
        # Direct: the thread stops itself, so shutdown() can wait without serving events.
        worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        worker.failed.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        thread.started.connect(worker.run)
        # Bound slots of UI-thread objects, so Qt queues these calls onto the UI thread.
        thread.finished.connect(task._thread_stopped)
        self._tasks.add(task)
        thread.start()
        return task

    def _forget(self, task: Task) -> None:
        if task not in self._tasks:
            return
        if task.thread is not None:
            task.thread.wait()
        # The thread has ended, so dropping the last references may delete both objects.
        task.worker, task.thread = None, None
        task.done.emit()
        self._tasks.discard(task)
        if not self._tasks:
            self.idle.emit()

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    def names(self) -> list[str]:
        return sorted(task.name for task in self._tasks)

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Wait for every running thread (at window close); True when all have stopped."""
        stopped = True
        for task in list(self._tasks):
            if task.thread is not None and not task.thread.wait(timeout_ms):
                log.warning("Task %s did not stop within %d ms", task.name, timeout_ms)
                stopped = False
        return stopped
