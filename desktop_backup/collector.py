"""Python's cycle collector while a backup, verify or restore reads rows: rarer passes.

The collector runs a pass whenever 700 more containers exist than at its last pass. A
backup makes a tuple per row (a million and more) that lives for one batch, a verify a list
per row, a restore a list per row twice (the check, then the writing), so the collector ran
about 1,300 passes through a 1.2M-row backup or verify and 7,000 through its restore,
walking the newest rows again and again to find no cyclic garbage among them: 0.7-1.3 s of
a wide backup's main thread (the part that sets a PostgreSQL backup's pace), 0.9 s of a
verify's 6.5 s, 5.7-6.1 s of a PostgreSQL restore's. With a pass per 10,000 more containers
(a batch holds at most 5,000 rows, so its rows alone start none) the collector took
0.03-0.10 s of the backup, 0.03 s of the verify and 0.3-0.5 s of the restore, at the same
peak RSS (bench/README.md). What little cyclic garbage the work makes (compiled
statements) is still collected.

A restore starts each stage with a full pass (`collect_first`): a schema reflected only to
be compared (restore.flow's check that nothing changed since the check) is 50,000 objects
in reference cycles, 10 MB at 126 tables, that would otherwise wait for a rarer pass while
the writing reaches its peak memory. So peak RSS stayed level: 132-146 MB for the six
1.2M-row restores, whose limit is 150 MB.

The setting is the whole process's. Two overlapping users (a scheduled backup while a
restore runs) share it: the first to begin sets it, the last to end puts back what was
there before.
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
def rarer_passes(collect_first: bool = False) -> Iterator[None]:
    """The collector passes every CONTAINERS_PER_PASS new containers while this runs (never
    more often than it did), then as before. `collect_first`: a full pass before, so what
    is garbage already is freed now, not when a rarer pass comes."""
    global _users, _before
    if collect_first:
        gc.collect()
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
