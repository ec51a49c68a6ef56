"""The results service keeps freed memory for the next read: Arrow allocates with glibc, which keeps its heap.

Run in a child process: the allocator settings are the whole process's.
"""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import pyarrow as pa
from workmesh.services.results._memory import retain_freed_memory
before = pa.default_memory_pool().backend_name
done = retain_freed_memory(64 << 20)
buf = pa.allocate_buffer(8 << 20)  # allocated by the pool now in use
print(before, done, pa.default_memory_pool().backend_name, buf.size)
"""


def test_arrow_allocates_with_glibc_after_retain_freed_memory():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=True)
    before, done, after, size = out.stdout.split()
    assert before != "system"  # pyarrow's default (mimalloc or jemalloc) hands freed memory back by itself
    assert done == "True" and after == "system" and size == str(8 << 20)
