"""Keeping freed memory in the results service for the next read instead of handing it back at once.

A read of one field of 10 jobs moves 700 MB through fresh buffers: the Parquet pages decoded by
Arrow, the response messages, gRPC's copies of them. With the allocators' defaults, that memory
goes back to the kernel once freed (Arrow's mimalloc purges after 10 ms, glibc trims its heap
and maps every block over 128 KiB on its own), so the next read gets new pages, which the kernel
must zero first: under ``perf``, page zeroing (``clear_page_erms``) was half of the service's
CPU in a read loop of such comparisons. :func:`retain_freed_memory` makes Arrow allocate with
glibc and tells glibc to serve blocks up to 64 MiB from its heap and to keep up to `keep` bytes of
free heap, so a read reuses the pages of the one before.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import pyarrow as pa
import structlog

__all__ = ["retain_freed_memory"]

log = structlog.get_logger("workmesh.results")

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_MIB = 1 << 20


def retain_freed_memory(keep: int = 256 * _MIB) -> bool:
    """Make Arrow use glibc's allocator and keep up to `keep` bytes of freed heap; False where not glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        log.info("results service: no glibc mallopt, freed memory is handed back as usual")
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    done = mallopt(_M_MMAP_THRESHOLD, 64 * _MIB) and mallopt(_M_TRIM_THRESHOLD, keep) and mallopt(_M_TOP_PAD, 16 * _MIB)
    if done:
        pa.set_memory_pool(pa.system_memory_pool())
    return bool(done)
