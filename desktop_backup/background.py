"""One worker thread that runs calls in order, a few behind the caller.

Backup and restore both overlap Python's work with work that releases the GIL (zlib, file
writes, a driver waiting for the server). The queue is short, so memory stays bounded: a slow
disk or server makes the caller wait rather than pile up batches. The first error stops the
remaining calls and is raised in the caller's thread at its next submit, drain or finish.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable


class BackgroundCalls:
    def __init__(self, depth: int, name: str) -> None:
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.failed: Callable[[], object] | None = None  # the call that raised `error`
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            call = self.queue.get()
            try:
                if call is None:
                    return
                if self.error is None:
                    try:
                        call()
                    except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
                        self.error, self.failed = exc, call
            finally:
                self.queue.task_done()

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def submit(self, call: Callable[[], object]) -> None:
        self.raise_error()
        self.queue.put(call)

    def drain(self) -> None:
        """Wait until everything submitted has run."""
        self.queue.join()
        self.raise_error()

    def finish(self, quiet: bool = False) -> None:
        """Stop the thread; `quiet` for clean-up after an error that was already raised."""
        self.queue.put(None)
        self.thread.join()
        if not quiet:
            self.raise_error()
