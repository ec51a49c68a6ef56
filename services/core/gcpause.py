"""Pausing Python's cyclic garbage collector while code builds many objects that are not garbage.

A read of 10 jobs x 1,000 series builds tens of thousands of small objects (series, their
dicts, array views) that all live on after it. With the collector on, each 700 of them start a
young collection, every tenth of those a middle one, and every few reads a full collection that
walks the whole heap of the process (0.2-1.1 s in the comparison reads measured: most of such a
read's fixed cost). None of those collections can free anything the read made (its objects are
in use, and they form no cycles), so :func:`collector_paused` turns automatic collection off for
the read and back on after it: the read's objects are then scanned once, by the first young
collection after it, instead of by every collection during it.

The pause is process-wide (the collector is), counted, so that overlapping pauses (concurrent
reads of one event loop, or threads) turn it back on when the last one ends, and only when it
was on at the first: a program that turned it off itself keeps it off. Reference counting frees
memory as usual meanwhile; only cyclic garbage made by other code during the pause waits for
the next collection.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["collector_paused"]

_lock = threading.Lock()
_depth = 0
_restore = False


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Turn automatic garbage collection off for the block (see the module docstring)."""
    global _depth, _restore
    with _lock:
        if _depth == 0:
            _restore = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _restore:
                gc.enable()
