"""The data model of the results service: series keys, chunks, names, units and limits.

Everything a store receives has passed :func:`decode_chunk`: names are valid, arrays have equal
lengths, timestamps are strictly increasing int64 nanoseconds and values are finite float64 or NaN.

NaN is the one "missing value": it is accepted and stored as missing (Parquet keeps the NaN,
InfluxDB omits the field from that point) and read back as NaN; a timestamp whose fields are all
NaN is not stored at all. ±Inf is rejected, because
InfluxDB cannot store it and a chart cannot draw it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from workmesh.services.core.errors import InvalidArgument, ResourceExhausted
from workmesh.v1 import results_pb2

MAX_CHUNK_BYTES = 32 * 1024 * 1024
"""Largest chunk payload (timestamps + values) the service accepts."""
MAX_FIELDS = 1024
"""Largest number of fields in one chunk."""

# Names must be safe as InfluxDB identifiers, Parquet column names and in file paths without
# escaping; a leading underscore is reserved (InfluxDB 2.x system columns, our unit catalogue).
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,127}")
_JOB = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
_RESERVED = frozenset({"time"})  # InfluxQL's time column cannot be a field or tag

_UNIT_NS: dict[int, int] = {
    results_pb2.TIME_UNIT_UNSPECIFIED: 1,
    results_pb2.TIME_UNIT_NANOSECONDS: 1,
    results_pb2.TIME_UNIT_MICROSECONDS: 1_000,
    results_pb2.TIME_UNIT_MILLISECONDS: 1_000_000,
    results_pb2.TIME_UNIT_SECONDS: 1_000_000_000,
}
_UNIT_NAMES = {
    "ns": results_pb2.TIME_UNIT_NANOSECONDS,
    "us": results_pb2.TIME_UNIT_MICROSECONDS,
    "ms": results_pb2.TIME_UNIT_MILLISECONDS,
    "s": results_pb2.TIME_UNIT_SECONDS,
}

Tags = tuple[tuple[str, str], ...]


def ns_per(unit: int) -> int:
    """Nanoseconds per step of a ``TimeUnit`` value."""
    try:
        return _UNIT_NS[unit]
    except KeyError:
        raise InvalidArgument("time_unit", f"unknown time unit {unit}") from None


def time_unit(name: str | int) -> results_pb2.TimeUnit:
    """The ``TimeUnit`` value of ``"s"``, ``"ms"``, ``"us"`` or ``"ns"`` (ints pass through)."""
    if isinstance(name, int):
        ns_per(name)  # one of TimeUnit's values, or InvalidArgument
        return cast(results_pb2.TimeUnit, name)
    try:
        return _UNIT_NAMES[name]
    except KeyError:
        raise InvalidArgument("time_unit", f"must be one of {sorted(_UNIT_NAMES)}, got {name!r}") from None


def check_name(what: str, value: str) -> str:
    """Raise InvalidArgument unless `value` is a valid measurement, tag key or field name."""
    if not _NAME.fullmatch(value) or value in _RESERVED:
        raise InvalidArgument(
            what,
            f"{value!r} is not a valid name: use a letter, then letters, digits, "
            "'_', '.' or '-', at most 128 characters, not 'time'",
        )
    return value


def check_tag_value(what: str, value: str) -> str:
    """Raise InvalidArgument unless `value` is a usable tag value (non-empty, printable, ≤ 256)."""
    if not value or len(value) > 256 or not value.isprintable():
        raise InvalidArgument(what, f"{value!r} is not a valid tag value: 1..256 printable characters")
    return value


def check_job_id(value: str, what: str = "job_id") -> str:
    """Raise InvalidArgument unless `value` can name a job directory and database."""
    if not _JOB.fullmatch(value):
        raise InvalidArgument(
            what,
            f"{value!r} is not a valid job id: letters, digits, '_', '.', '-', "
            "starting with a letter or digit, at most 128 characters",
        )
    return value


def check_tags(tags: Mapping[str, str], what: str = "tags") -> Tags:
    """Validate tags and return them as a sorted tuple (the canonical form in a key)."""
    for name, value in tags.items():
        check_name(f"{what}[{name!r}]", name)
        check_tag_value(f"{what}[{name!r}]", value)
    return tuple(sorted(tags.items()))


@dataclass(frozen=True, order=True)
class SeriesKey:
    """What identifies a series: job, measurement and (sorted) tags."""

    job_id: str
    measurement: str
    tags: Tags = ()

    @property
    def tag_dict(self) -> dict[str, str]:
        return dict(self.tags)

    def to_pb(self) -> results_pb2.SeriesKey:
        return results_pb2.SeriesKey(job_id=self.job_id, measurement=self.measurement, tags=dict(self.tags))

    @classmethod
    def from_pb(cls, key: results_pb2.SeriesKey, what: str = "chunk.key") -> SeriesKey:
        return cls(
            check_job_id(key.job_id, f"{what}.job_id"),
            check_name(f"{what}.measurement", key.measurement),
            check_tags(key.tags, f"{what}.tags"),
        )


@dataclass
class Chunk:
    """Validated columns of one series: int64 ns timestamps and float64 fields of equal length."""

    key: SeriesKey
    timestamps: np.ndarray
    fields: dict[str, np.ndarray]
    units: dict[str, str] = field(default_factory=dict)
    time_unit: int = results_pb2.TIME_UNIT_NANOSECONDS  # as the writer sent it

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def values(self) -> int:
        """Number of float values (timestamps x fields)."""
        return len(self.timestamps) * len(self.fields)


def decode_chunk(chunk: results_pb2.SeriesChunk, what: str = "chunk") -> Chunk:
    """Validate a chunk from the wire and turn it into arrays (the values are not copied)."""
    payload = len(chunk.timestamps) + sum(len(f.values) for f in chunk.fields)
    if payload > MAX_CHUNK_BYTES:
        raise ResourceExhausted(
            f"{what}: {payload} bytes of timestamps and values exceed the limit of "
            f"{MAX_CHUNK_BYTES} bytes per chunk; send smaller chunks"
        )
    if len(chunk.fields) > MAX_FIELDS:
        raise ResourceExhausted(f"{what}.fields: {len(chunk.fields)} fields exceed the limit of {MAX_FIELDS}")
    if not chunk.HasField("key"):
        raise InvalidArgument(f"{what}.key", "is required")
    key = SeriesKey.from_pb(chunk.key, f"{what}.key")
    scale = ns_per(chunk.time_unit)
    if not chunk.fields:
        raise InvalidArgument(f"{what}.fields", "at least one field is required")
    ts = _timestamps(chunk, what)
    check_increasing(f"{what}.timestamps", ts)
    if scale != 1:
        limit = np.iinfo(np.int64).max // scale
        if ts[0] < -limit or ts[-1] > limit:
            raise InvalidArgument(f"{what}.timestamps", "out of the int64 nanosecond range")
        ts = ts * scale
    fields: dict[str, np.ndarray] = {}
    units: dict[str, str] = {}
    missing: np.ndarray | None = None  # rows where every field so far is NaN
    for col in chunk.fields:
        name = check_name(f"{what}.fields.name", col.name)
        where = f"{what}.fields[{name!r}]"
        if name in fields:
            raise InvalidArgument(where, "field given twice")
        if len(col.values) != 8 * len(ts):
            raise InvalidArgument(
                f"{where}.values",
                f"has {len(col.values) // 8} values for {len(ts)} timestamps; arrays must have equal length",
            )
        values = np.frombuffer(col.values, dtype="<f8")
        nan = check_finite(f"{where}.values", values)
        if not fields:
            missing = nan
        elif missing is not None:
            missing = missing & nan if nan is not None else None
        fields[name] = values
        if col.unit:
            if len(col.unit) > 64 or not col.unit.isprintable():
                raise InvalidArgument(f"{where}.unit", "at most 64 printable characters")
            units[name] = col.unit
    if missing is not None and missing.any():
        # A timestamp without any value is not stored (InfluxDB cannot hold a point without fields).
        keep = ~missing
        ts = ts[keep]
        fields = {name: values[keep] for name, values in fields.items()}
    return Chunk(key, ts, fields, units, chunk.time_unit or results_pb2.TIME_UNIT_NANOSECONDS)


def _timestamps(chunk: results_pb2.SeriesChunk, what: str) -> np.ndarray:
    raw = chunk.timestamps
    if raw or chunk.time_step <= 0:
        if len(raw) % 8:
            raise InvalidArgument(f"{what}.timestamps", "must be little-endian int64 (length a multiple of 8)")
        if not raw:
            raise InvalidArgument(f"{what}.timestamps", "must not be empty (or give time_start and time_step > 0)")
        return np.frombuffer(raw, dtype="<i8")
    count = len(chunk.fields[0].values) // 8
    last = chunk.time_start + (count - 1) * chunk.time_step
    if count == 0 or last > np.iinfo(np.int64).max:
        raise InvalidArgument(f"{what}.time_step", "the regular timestamps are empty or leave the int64 range")
    return chunk.time_start + np.arange(count, dtype=np.int64) * chunk.time_step


def check_increasing(what: str, ts: np.ndarray) -> None:
    """Raise InvalidArgument unless `ts` is strictly increasing, naming the first bad index."""
    if len(ts) > 1:
        bad = np.flatnonzero(ts[1:] <= ts[:-1])
        if len(bad):
            i = int(bad[0]) + 1
            rule = "duplicated" if ts[i] == ts[i - 1] else "out of order"
            raise InvalidArgument(
                what,
                f"must be strictly increasing; timestamp {int(ts[i])} at index {i} is "
                f"{rule} (previous {int(ts[i - 1])})",
            )


def check_finite(what: str, values: np.ndarray) -> np.ndarray | None:
    """Raise InvalidArgument on ±Inf; return the NaN mask, or None when every value is finite."""
    if np.isfinite(values).all():  # one pass for the common case
        return None
    inf = np.isinf(values)
    if inf.any():
        i = int(np.argmax(inf))
        raise InvalidArgument(
            what, f"value {values[i]} at index {i} is infinite; only finite values or NaN (missing) are stored"
        )
    return np.isnan(values)


def encode_chunk(
    key: SeriesKey,
    timestamps: np.ndarray,
    fields: Mapping[str, np.ndarray],
    units: Mapping[str, str] | None = None,
    unit: results_pb2.TimeUnit = results_pb2.TIME_UNIT_NANOSECONDS,
    *,
    compact: bool = True,
) -> results_pb2.SeriesChunk:
    """Build the wire form of a chunk (timestamps already in `unit`; regular ones sent as start + step)."""
    units = units or {}
    chunk = results_pb2.SeriesChunk(
        key=key.to_pb(),
        time_unit=unit,
        fields=[
            results_pb2.FieldColumn(
                name=name, values=np.ascontiguousarray(v, dtype="<f8").tobytes(), unit=units.get(name, "")
            )
            for name, v in fields.items()
        ],
    )
    ts = np.asarray(timestamps, dtype=np.int64)
    step = int(ts[1] - ts[0]) if len(ts) > 1 else 0
    if compact and step > 0 and fields and np.array_equal(ts, ts[0] + np.arange(len(ts), dtype=np.int64) * step):
        chunk.time_start, chunk.time_step = int(ts[0]), step
    else:
        chunk.timestamps = np.ascontiguousarray(ts, dtype="<i8").tobytes()
    return chunk


def chunk_timestamps(chunk: results_pb2.SeriesChunk) -> np.ndarray:
    """The timestamps of a wire chunk, whichever way they were sent (not validated)."""
    if chunk.timestamps or chunk.time_step <= 0 or not chunk.fields:
        return np.frombuffer(chunk.timestamps, dtype="<i8")
    count = len(chunk.fields[0].values) // 8
    return chunk.time_start + np.arange(count, dtype=np.int64) * chunk.time_step


@dataclass
class SeriesData:
    """A series as a store returns it: ns timestamps and float64 fields (NaN: missing).

    `step` > 0: the store knows the timestamps are regular (timestamps[0] + i * step), so the
    service sends them as start and step without checking; 0: not known (checked when sent).
    """

    key: SeriesKey
    timestamps: np.ndarray
    fields: dict[str, np.ndarray]
    units: dict[str, str] = field(default_factory=dict)
    step: int = 0


@dataclass(frozen=True)
class SeriesSummary:
    """One line of ListSeries: a series with its fields, count and time span (ns)."""

    key: SeriesKey
    fields: tuple[str, ...]
    count: int
    start: int
    end: int
    units: Mapping[str, str] = field(default_factory=dict)

    def to_pb(self) -> results_pb2.SeriesInfo:
        return results_pb2.SeriesInfo(
            key=self.key.to_pb(),
            fields=list(self.fields),
            count=self.count,
            start=self.start,
            end=self.end,
            units=dict(self.units),
        )


@dataclass(frozen=True)
class ReadQuery:
    """What to read from one job, in nanoseconds. `window` 0 means raw values."""

    job_id: str
    measurement: str = ""
    tags: Tags = ()
    fields: tuple[str, ...] = ()
    start: int | None = None
    end: int | None = None
    window: int = 0
    aggregate: str = ""  # "mean" | "min" | "max" | "last" with window

    def matches(self, key: SeriesKey) -> bool:
        """Whether a series of the job is selected by measurement and tag filter."""
        if self.measurement and key.measurement != self.measurement:
            return False
        have = dict(key.tags)
        return all(have.get(k) == v for k, v in self.tags)
