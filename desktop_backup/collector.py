"""Python's cycle collector during a backup's export: rarer passes, the same memory.

The collector runs a pass whenever 700 more containers exist than at its last pass. A
backup makes a tuple per row (a million and more) that lives for one batch, so the
collector ran about 1,300 passes through a 1.2M-row backup, each walking the newest rows,
only to find that nothing was cyclic garbage: 0.6-0.9 s of the main thread (the part of a
PostgreSQL backup that sets its pace), 0.1 s of the demo's 1M narrow rows. With a pass per
10,000 more containers it ran 12 and took 0.03-0.05 s, at the same peak RSS
(bench/README.md). A batch holds at most 5,000 rows, so its rows never start a pass; what
little cyclic garbage a backup makes (compiled statements) is still collected.

Not in the restore: the same setting there cost 4-8 MB of peak RSS in a 1.2M-row restore,
whose limit is 150 MB (bench/README.md).

The setting is the whole process's. A backup on a worker thread and one started while it
runs (a restore point) share it: the first to begin sets it, the last to end puts back what
was there before.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from desktop_backup.archive import BATCH_ROWS

# Above a batch's rows, so a batch alone never starts a pass (measured: bench/README.md).
CONTAINERS_PER_PASS = 2 * BATCH_ROWS

_lock = threading.Lock()
_users = 0
_before: tuple[int, ...] = ()


@contextmanager
def rarer_passes() -> Iterator[None]:
    """The collector passes every CONTAINERS_PER_PASS new containers while this runs (never
    more often than it did), then as before."""
    global _users, _before
    with _lock:
        if _users == 0:
            _before = gc.get_threshold()
            if _before[0]:  # 0: collection is switched off, and stays so
                gc.set_threshold(max(_before[0], CONTAINERS_PER_PASS), *_before[1:])
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                gc.set_threshold(*_before)
