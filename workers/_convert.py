"""Parsing and conversion of parameter values: strings, Python objects and ParamValue messages.

Kept apart from the validation rules (``params.py``) so the declaration side (``_params.py``) can
convert defaults with the same code the gateway uses to check requests.
"""

from __future__ import annotations

import datetime as _dt
import math

from google.protobuf import duration_pb2, timestamp_pb2

from workmesh.services.core import durations
from workmesh.services.core.limits import PARAM_TYPE_NAMES
from workmesh.v1 import common_pb2

T = common_pb2.ParamType
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# The ranges google.protobuf.Timestamp and Duration define (beyond them a value is invalid, and
# converting it to a datetime/timedelta fails): 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z,
# and ±10,000 years.
TIMESTAMP_MIN_SECONDS, TIMESTAMP_MAX_SECONDS = -62135596800, 253402300799
DURATION_MAX_SECONDS = 315576000000

TYPE_NAMES = PARAM_TYPE_NAMES

_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


class ParseError(ValueError):
    """A value that cannot be read as the wanted type; the message is the rule it breaks."""


def parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ParseError(f"expected a bool (true/false/1/0/yes/no), got {text!r}")


def parse_int(text: str) -> int:
    try:
        number = int(text.strip().replace("_", ""), 10)
    except ValueError:
        raise ParseError(f"expected an int, got {text!r}") from None
    if not INT64_MIN <= number <= INT64_MAX:
        raise ParseError("must fit in a signed 64-bit integer")
    return number


def parse_float(text: str) -> float:
    try:
        number = float(text.strip())
    except ValueError:
        raise ParseError(f"expected a float, got {text!r}") from None
    if not math.isfinite(number):
        raise ParseError("must be a finite number")
    return number


def parse_duration(text: str) -> float:
    """Seconds from "90", "1.5", "90s", "1h30m", "-5m", "PT1H30M" or "P1DT2H" (the one grammar,
    :func:`workmesh.services.core.durations.parse_duration`)."""
    try:
        return durations.parse_duration(text)
    except ValueError as exc:
        raise ParseError(str(exc)) from None


def parse_datetime(text: str) -> _dt.datetime:
    """An ISO 8601 date or date-time; a value without a UTC offset is taken as UTC."""
    try:
        value = _dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ParseError(f'expected an ISO 8601 datetime such as "2026-01-31T12:00:00Z", got {text!r}') from None
    try:
        return as_utc(value)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-23:59 is in the year 10000 in UTC
        raise ParseError("must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z in UTC") from None


def timestamp_problem(ts: timestamp_pb2.Timestamp) -> str:
    """Why `ts` is not a valid Timestamp, or "" when it is."""
    if not 0 <= ts.nanos <= 999_999_999:
        return "nanos must be between 0 and 999999999"
    if not TIMESTAMP_MIN_SECONDS <= ts.seconds <= TIMESTAMP_MAX_SECONDS:
        return "must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z"
    return ""


def duration_problem(dur: duration_pb2.Duration) -> str:
    """Why `dur` is not a valid Duration, or "" when it is."""
    if not -999_999_999 <= dur.nanos <= 999_999_999:
        return "nanos must be between -999999999 and 999999999"
    if (dur.seconds > 0 and dur.nanos < 0) or (dur.seconds < 0 and dur.nanos > 0):
        return "seconds and nanos must have the same sign"
    if abs(dur.seconds) > DURATION_MAX_SECONDS:
        return f"must be at most {DURATION_MAX_SECONDS} seconds (10,000 years) either way"
    return ""


def as_utc(value: _dt.datetime) -> _dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=_dt.UTC)
    return value.astimezone(_dt.UTC)


def seconds_of(value: common_pb2.ParamValue) -> float:
    """Seconds of a duration_value."""
    d = value.duration_value
    return d.seconds + d.nanos / 1e9


def duration_value(seconds: float) -> common_pb2.ParamValue:
    return common_pb2.ParamValue(duration_value=durations.to_proto(seconds))


def datetime_value(value: _dt.datetime) -> common_pb2.ParamValue:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(as_utc(value))
    return common_pb2.ParamValue(datetime_value=ts)


def to_datetime(value: common_pb2.ParamValue) -> _dt.datetime:
    return value.datetime_value.ToDatetime(tzinfo=_dt.UTC)


def describe(value: common_pb2.ParamValue) -> str:
    """A short description of what a client sent, for error messages."""
    kind = value.WhichOneof("kind")
    if kind is None:
        return "no value"
    if kind == "string_value":
        return f"string {value.string_value!r}"
    return kind.removesuffix("_value")
