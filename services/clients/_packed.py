"""Packed ReadSeries responses: many series per message, their arrays in one ``data`` field.

A chunked response (``ReadSeriesResponse.chunks``) costs a parse per series on both sides; a
comparison of 10 jobs x 1,000 components is 10,000 of them. A packed response
(``ReadSeriesRequest.packed``) holds the series' headers (``PackedSeries``: key, count, time
axis, field names and units) and then one ``data`` field with every array, so:

* :class:`PackWriter` encodes a response straight from numpy arrays — the headers by hand, the
  arrays copied once, into the message bytes — as ``SerializeToString`` would (fields in number
  order, defaults left out), so any protobuf reader reads it;
* :func:`parse_packed` lets protobuf parse the headers only (the bytes before ``data``, a small
  part) and hands the arrays out as zero-copy views of the message, as the
  :class:`~workmesh.services.clients._wire.RawChunk` objects the chunked path gives. Anything but
  the well-formed common case is parsed by protobuf, whose result (or ``DecodeError``) it is.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from google.protobuf.message import DecodeError

from workmesh.services.clients._wire import (
    RawChunk,
    RawField,
    _Fallback,
    _items,
    _string,
    _tag,
    _varint,
    parse_read_response,
)
from workmesh.v1 import results_pb2

__all__ = ["PackWriter", "key_bytes", "parse_packed", "parse_response"]


def key_bytes(job_id: str, rest: bytes) -> bytes:
    """A serialized SeriesKey from the job id and the serialized rest (measurement, tags) of the key."""
    return _string(1, job_id) + rest


class PackWriter:
    """Packs series into ReadSeriesResponse messages of about `limit` bytes.

    :meth:`add` returns a finished message (bytes) when the one being filled reached the limit;
    :meth:`finish` returns the last one (or None). A series longer than fits in one message may
    be added in slices, one after the other: consecutive entries with one key are one series.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._heads: list[bytes] = []
        self._arrays: list = []  # numpy arrays: buffers for the join
        self._size = 0  # bytes of the arrays
        self._head_size = 0

    def add(
        self,
        key: bytes,
        timestamps: np.ndarray,
        fields: Mapping[str, np.ndarray],
        units: Mapping[str, str] | None,
        *,
        step: int = 0,
    ) -> bytes | None:
        """Add one series: `key` a serialized SeriesKey, int64 `timestamps`, float64 `fields`.

        `step` > 0: the caller knows the timestamps are regular with this step (not checked);
        otherwise they are checked, and regular ones are sent as start and step all the same.
        """
        units = units or {}
        count = len(timestamps)
        if step <= 0 and count > 1 and fields:  # not known: send regular timestamps as start and step
            guess = int(timestamps[1] - timestamps[0])
            if guess > 0 and np.array_equal(timestamps, timestamps[0] + np.arange(count, dtype=np.int64) * guess):
                step = guess
        head = [_tag(1, 2), _varint(len(key)), key]
        if count:
            head.append(b"\x10" + _varint(count))
        if step > 0 and count and fields:
            if timestamps[0]:
                head.append(b"\x18" + _varint(int(timestamps[0])))
            head.append(b"\x20" + _varint(step))
        else:
            raw = np.ascontiguousarray(timestamps, dtype="<i8")
            self._arrays.append(raw)
            self._size += raw.nbytes
        for name, values in fields.items():
            head.append(_string(5, name) or b"\x2a\x00")
            raw = np.ascontiguousarray(values, dtype="<f8")
            self._arrays.append(raw)
            self._size += raw.nbytes
        if any(units.get(name) for name in fields):
            head += [_string(6, units.get(name, "")) or b"\x32\x00" for name in fields]
        entry = b"".join(head)
        entry = b"\x12" + _varint(len(entry)) + entry
        self._heads.append(entry)
        self._head_size += len(entry)
        if self._size + self._head_size >= self.limit:
            return self.finish()
        return None

    def finish(self) -> bytes | None:
        """The message being filled, or None when it is empty."""
        if not self._heads:
            return None
        tail = [b"\x1a" + _varint(self._size)] if self._size else []
        message = b"".join([*self._heads, *tail, *self._arrays])
        self._heads, self._arrays, self._size, self._head_size = [], [], 0, 0
        return message


def parse_response(raw: bytes) -> list[RawChunk] | list[results_pb2.SeriesChunk]:
    """The series of a ReadSeriesResponse, chunked or packed, as chunks (views of `raw` where it can).

    Raises:
        DecodeError: the bytes are not a valid ReadSeriesResponse.
    """
    if raw[:1] != b"\x0a":  # a chunked response starts with its first chunk
        packed = parse_packed(raw)
        if packed is not None:
            return packed
    return parse_read_response(raw)


def parse_packed(raw: bytes) -> list[RawChunk] | None:
    """The packed series of a ReadSeriesResponse as RawChunks (views of `raw`); None if it has none.

    Raises:
        DecodeError: the bytes are not a valid ReadSeriesResponse.
    """
    buf = memoryview(raw)
    try:
        heads_end, data = 0, None
        for number, wire, a, b in _items(buf, 0, len(buf)):
            if number == 2 and wire == 2 and data is None:
                heads_end = b
            elif number == 3 and wire == 2 and data is None:
                data = buf[a:b]
            else:  # chunks, a field given twice, out of order: not the common case
                raise _Fallback
        if not heads_end:
            return None
        heads = results_pb2.ReadSeriesResponse.FromString(bytes(buf[:heads_end])).packed
        return _chunks(heads, data if data is not None else memoryview(b""))
    except _Fallback:
        response = results_pb2.ReadSeriesResponse.FromString(raw)
        if not response.packed:
            return None
        return _chunks(response.packed, memoryview(response.data))


def _chunks(heads, data: memoryview) -> list[RawChunk]:
    out = []
    pos = 0
    for head in heads:
        chunk = RawChunk()
        chunk._key = head.key
        width = 8 * head.count
        if head.time_step > 0:
            chunk.time_start, chunk.time_step = head.time_start, head.time_step
        else:
            chunk.timestamps = data[pos : pos + width]
            pos += width
        units = head.units
        for i, name in enumerate(head.fields):
            column = RawField()
            column.name = name
            column.values = data[pos : pos + width]
            column.unit = units[i] if i < len(units) else ""
            chunk.fields.append(column)
            pos += width
        out.append(chunk)
    if pos != len(data):
        raise DecodeError(f"packed series: data holds {len(data)} bytes, the series {pos}")
    return out
