"""InfluxDB line protocol and InfluxQL quoting, vectorised with Arrow compute.

Formatting floats dominates the cost of the InfluxDB path; Arrow's float-to-string cast writes
the shortest representation that reads back to the same double (so nothing is lost) and runs in
C++ without holding the GIL, and a whole chunk's lines end up as one contiguous buffer.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from workmesh.services.clients._model import Chunk, ns_per
from workmesh.v1 import results_pb2

PRECISION: dict[int, str] = {
    results_pb2.TIME_UNIT_SECONDS: "s",
    results_pb2.TIME_UNIT_MILLISECONDS: "ms",
    results_pb2.TIME_UNIT_MICROSECONDS: "u",
    results_pb2.TIME_UNIT_NANOSECONDS: "n",
}


def escape_key(value: str) -> str:
    """Escape a measurement, tag key, tag value or field key for line protocol."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def ident(name: str) -> str:
    """An InfluxQL double-quoted identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(value: str) -> str:
    """An InfluxQL single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def series_prefix(chunk: Chunk) -> str:
    """``measurement,tag=value,...`` (tags are already sorted, as InfluxDB prefers)."""
    return escape_key(chunk.key.measurement) + "".join(f",{escape_key(k)}={escape_key(v)}" for k, v in chunk.key.tags)


def encode_lines(chunk: Chunk) -> tuple[bytes, int]:
    """The lines of a chunk (timestamps in its own time unit) and their number.

    NaN values are left out of their line; a timestamp where every field is NaN has no line.
    """
    scale = ns_per(chunk.time_unit)
    ts = chunk.timestamps // scale if scale != 1 else chunk.timestamps
    arrays = []
    for name, values in chunk.fields.items():
        nan = np.isnan(values)
        arrays.append((escape_key(name), pa.array(values, mask=nan) if nan.any() else pa.array(values)))
    times = pc.cast(pa.array(ts), pa.string())
    prefix = series_prefix(chunk) + " "
    if not any(arr.null_count for _, arr in arrays):
        # One pass over all columns: prefix, "Q=", q, ",T=", t, ..., " ", time, "\n" (no
        # intermediate string arrays per field: joining costs as much as formatting otherwise).
        pieces: list = []
        for i, (name, arr) in enumerate(arrays):
            pieces += [pa.scalar((prefix if i == 0 else ",") + name + "="), pc.cast(arr, pa.string())]
        lines = pc.binary_join_element_wise(*pieces, pa.scalar(" "), times, pa.scalar("\n"), "")
        return _data(lines), len(lines)
    # Missing values: "name=value," or "" per field, joined, the last comma trimmed; a line left
    # without any field is dropped (InfluxDB has no points without fields).
    parts = [
        pc.fill_null(
            pc.binary_join_element_wise(pa.scalar(name + "="), pc.cast(arr, pa.string()), pa.scalar(","), ""), ""
        )
        for name, arr in arrays
    ]
    fieldset = pc.utf8_rtrim(pc.binary_join_element_wise(*parts, ""), ",")
    keep = pc.greater(pc.binary_length(fieldset), 0)  # type: ignore[call-overload]  # pyarrow-stubs: no Python scalars
    fieldset, times = pc.filter(fieldset, keep), pc.filter(times, keep)
    if len(fieldset) == 0:
        return b"", 0
    lines = pc.binary_join_element_wise(pa.scalar(prefix), fieldset, pa.scalar(" "), times, pa.scalar("\n"), "")
    return _data(lines), len(lines)


def _data(strings: pa.StringArray) -> bytes:
    """The concatenated characters of a string array without a copy per element."""
    _, offset_buffer, data = strings.buffers()[:3]
    if offset_buffer is None or data is None:  # no characters at all
        return b""
    # pyarrow-stubs do not declare pa.Buffer's buffer protocol (numpy reads it).
    offsets = np.frombuffer(offset_buffer, dtype=np.int32)  # type: ignore[call-overload]
    offsets = offsets[strings.offset : strings.offset + len(strings) + 1]
    return memoryview(data)[offsets[0] : offsets[-1]].tobytes()
