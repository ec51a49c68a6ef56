"""The one duration grammar: text to seconds, and back to Go/Consul text.

:func:`parse_duration` reads what people write — plain seconds (``90``, ``1.5``), unit terms
(``500ms``, ``90s``, ``1h30m``, ``1.5h``, ``7d``, ``2w``) and ISO 8601 (``PT1H30M``, ``P1DT2H``;
no years or months, whose length in seconds is not defined) — for environment variables, CLI
flags and parameter values alike.

:func:`parse_go_duration` is the strict subset Consul's API takes: Go's ``time.ParseDuration``
(units required except for ``0``, ``ns`` to ``h``); JSON numbers are nanoseconds. The embedded
registry uses it so it refuses what Consul refuses; the registry client sizes its timeouts with it.
"""

from __future__ import annotations

import math
import re

from google.protobuf import duration_pb2

__all__ = ["format_duration", "parse_duration", "parse_go_duration", "to_proto"]

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_GO_UNITS = frozenset({"ns", "us", "µs", "μs", "ms", "s", "m", "h"})
_TERM = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h|d|w)")
_ISO = re.compile(
    r"P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)
_ISO_SECONDS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_EXPECTED = 'expected a duration such as "90s", "1h30m", "PT1H30M" or seconds'


def _terms(body: str, units: frozenset[str] | None = None) -> float | None:
    """The seconds of a run of unit terms ("1h30m"), or None when `body` is not one."""
    total, pos = 0.0, 0
    while pos < len(body):
        match = _TERM.match(body, pos)
        if not match or (units is not None and match.group(2) not in units):
            return None
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return total if body else None


def _split_sign(text: str) -> tuple[float, str]:
    if text[:1] in ("+", "-"):
        return (-1.0 if text[0] == "-" else 1.0), text[1:]
    return 1.0, text


def parse_duration(text: str) -> float:
    """Seconds from ``"90"``, ``"1.5"``, ``"90s"``, ``"1h30m"``, ``"-5m"``, ``"7d"``,
    ``"PT1H30M"`` or ``"P1DT2H"``.

    Raises:
        ValueError: not a duration; the message gives the accepted forms and quotes the text.
    """
    if not isinstance(text, str):
        raise ValueError(f"{_EXPECTED}, got {text!r}")
    raw = text.strip()
    if not raw:
        raise ValueError(f"{_EXPECTED}, got an empty string")
    sign, body = _split_sign(raw)
    try:
        plain = float(body)
    except ValueError:
        pass
    else:
        if not math.isfinite(plain):
            raise ValueError(f"must be a finite duration, got {text!r}")
        return sign * plain
    terms = _terms(body)
    if terms is not None:
        return sign * terms
    upper = body.upper()
    iso = _ISO.fullmatch(upper)
    if iso and upper not in ("P", "PT") and not upper.endswith("T"):
        return sign * sum(float(v) * _ISO_SECONDS[k] for k, v in iso.groupdict().items() if v)
    raise ValueError(f"{_EXPECTED}, got {text!r}")


def parse_go_duration(value: str | int | float) -> float:
    """Seconds from a Go duration string (``"1s"``, ``"1m30s"``, ``"250ms"``) or a number of
    nanoseconds, as Consul's API reads them.

    Raises:
        ValueError: not a Go duration; the message quotes it.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"invalid duration {value!r}")
    if not isinstance(value, str):
        return float(value) * 1e-9
    sign, body = _split_sign(value.strip())
    if body == "0":
        return 0.0
    seconds = _terms(body, _GO_UNITS)
    if seconds is None:
        raise ValueError(f'invalid duration "{value}"')
    return sign * seconds


def format_duration(seconds: float) -> str:
    """Seconds as a Go duration string Consul accepts ("1.5s", "250ms")."""
    if seconds >= 1:
        return f"{seconds:g}s"
    return f"{seconds * 1000:g}ms"


def to_proto(seconds: float) -> duration_pb2.Duration:
    """Seconds as a ``google.protobuf.Duration``, to the nanosecond (within what a double carries:
    whole seconds and the fraction are split before scaling, so large values keep their nanos)."""
    whole = math.trunc(seconds)
    nanos = round((seconds - whole) * 1e9)
    if abs(nanos) == 1_000_000_000:  # the fraction rounded up to a whole second
        whole, nanos = whole + (1 if nanos > 0 else -1), 0
    return duration_pb2.Duration(seconds=int(whole), nanos=int(nanos))
