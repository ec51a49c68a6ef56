"""Shared pieces of the fuzz suites: hypothesis profiles and process measurements.

Every fuzz test runs under one of two profiles, chosen by its marker (see ``conftest.py``):
``quick`` in the default suite (a few hundred examples, seconds) and ``long`` for tests marked
``fuzz_long`` (≥ 10,000 examples), which are skipped unless selected with ``-m fuzz_long``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Each example talks to a real server whose state carries over from the examples before it, so
# replaying a stored failure is not exact: no example database, and no shrinking time limit
# that a slow loaded machine would trip.
_COMMON = {
    "deadline": None,
    "database": None,
    "print_blob": True,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
}

QUICK = settings(max_examples=300, **_COMMON)
"""The default-suite profile: a few hundred examples, a few seconds."""

LONG = settings(max_examples=10_000, **_COMMON)
"""The ``fuzz_long`` profile: ten thousand examples."""

LONG_MARKER = "fuzz_long"


def profile_for(node: pytest.Item) -> settings:
    """:data:`LONG` for a test marked ``fuzz_long``, else :data:`QUICK`."""
    return LONG if node.get_closest_marker(LONG_MARKER) else QUICK


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (all its threads) has used so far, from /proc."""
    # Fields after the parenthesised command name start at field 3 (state); utime and stime
    # are fields 14 and 15, in clock ticks.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
