"""Go/Consul duration strings ("1s", "1m30s", "250ms") to seconds and back.

Consul parses every duration in its API (``wait``, check ``Interval``/``Timeout``/``TTL``,
``DeregisterCriticalServiceAfter``) with Go's ``time.ParseDuration``; JSON numbers are taken as
nanoseconds. Both the client (to size its HTTP timeouts) and the embedded registry use this.
"""

from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(value: str | int | float) -> float:
    """Parse a Go duration string (or a number of nanoseconds) into seconds.

    Raises:
        ValueError: the text is not a Go duration; the message quotes it.
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, (int, float)):
        return float(value) * 1e-9
    if not isinstance(value, str):
        raise ValueError(f"invalid duration {value!r}")
    text = value.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body == "0":
        return 0.0
    total, pos = 0.0, 0
    while pos < len(body):
        match = _PART.match(body, pos)
        if not match:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not body or pos != len(body):
        raise ValueError(f'invalid duration "{value}"')
    return sign * total


def format_duration(seconds: float) -> str:
    """Seconds as a Go duration string Consul accepts ("1.5s", "250ms")."""
    if seconds >= 1:
        return f"{seconds:g}s"
    return f"{seconds * 1000:g}ms"
