"""Unit tests (no I/O): chunk decoding, names, line protocol and downsampling."""

from __future__ import annotations

import numpy as np
import pytest

from workmesh.services.clients import MAX_CHUNK_BYTES, Chunk, SeriesKey
from workmesh.services.clients._model import check_job_id, check_name, decode_chunk, encode_chunk
from workmesh.services.core.errors import InvalidArgument, ResourceExhausted
from workmesh.services.results.stores._lineproto import encode_lines, escape_key, ident, literal
from workmesh.services.results.stores._protocol import downsample
from workmesh.v1 import results_pb2

KEY = SeriesKey("job-1", "heat", (("asset", "b 1"),))


def test_decode_converts_units_to_ns_and_keeps_units():
    wire = encode_chunk(
        KEY, np.array([1, 2, 3]), {"Q": np.array([1.0, 2.0, 3.0])}, {"Q": "kW"}, results_pb2.TIME_UNIT_SECONDS
    )
    chunk = decode_chunk(wire)
    assert chunk.key == KEY and chunk.units == {"Q": "kW"}
    np.testing.assert_array_equal(chunk.timestamps, [10**9, 2 * 10**9, 3 * 10**9])
    assert chunk.time_unit == results_pb2.TIME_UNIT_SECONDS and chunk.values == 3


def test_regular_timestamps_travel_as_start_and_step():
    wire = encode_chunk(KEY, np.array([10, 20, 30]), {"Q": np.ones(3), "T": np.zeros(3)})
    assert (wire.timestamps, wire.time_start, wire.time_step) == (b"", 10, 10)
    np.testing.assert_array_equal(decode_chunk(wire).timestamps, [10, 20, 30])
    irregular = encode_chunk(KEY, np.array([10, 20, 35]), {"Q": np.ones(3)})
    assert irregular.time_step == 0 and len(irregular.timestamps) == 24
    wire.fields[1].values = wire.fields[1].values[:8]
    with pytest.raises(InvalidArgument, match=r"fields\['T'\].values: has 1 values for 3 timestamps"):
        decode_chunk(wire)
    overflow = encode_chunk(KEY, np.array([0, 2**62]), {"Q": np.ones(2)})
    overflow.fields[0].values = np.ones(3).tobytes()
    with pytest.raises(InvalidArgument, match="chunk.time_step: the regular timestamps"):
        decode_chunk(overflow)


def test_decode_drops_timestamps_without_any_value():
    wire = encode_chunk(
        KEY, np.array([1, 2, 3]), {"Q": np.array([1.0, np.nan, np.nan]), "T": np.array([np.nan, np.nan, 3.0])}
    )
    chunk = decode_chunk(wire)
    np.testing.assert_array_equal(chunk.timestamps, [1, 3])
    np.testing.assert_array_equal(chunk.fields["Q"], [1.0, np.nan])


def test_decode_rejects_seconds_beyond_the_ns_range():
    wire = encode_chunk(KEY, np.array([2**62]), {"Q": np.array([1.0])}, None, results_pb2.TIME_UNIT_SECONDS)
    with pytest.raises(InvalidArgument, match="chunk.timestamps: out of the int64 nanosecond range"):
        decode_chunk(wire)


def test_decode_rejects_oversized_chunk():
    n = MAX_CHUNK_BYTES // 8
    wire = encode_chunk(KEY, np.arange(n), {"Q": np.zeros(n)}, compact=False)
    with pytest.raises(ResourceExhausted, match="exceed the limit"):
        decode_chunk(wire)


@pytest.mark.parametrize("name", ["", "1abc", "a b", "a,b", "a=b", "_x", "time", "ä", "x" * 129])
def test_invalid_names(name):
    with pytest.raises(InvalidArgument, match="is not a valid name"):
        check_name("measurement", name)


@pytest.mark.parametrize("name", ["heat", "Q", "T_supply", "heat.demand", "a-b", "x" * 128])
def test_valid_names(name):
    assert check_name("measurement", name) == name


@pytest.mark.parametrize("job", ["", "../x", "a/b", "a b", ".hidden"])
def test_invalid_job_ids(job):
    with pytest.raises(InvalidArgument, match="job_id"):
        check_job_id(job)


def test_line_protocol_escaping_and_missing_values():
    chunk = Chunk(
        KEY,
        np.array([1, 2, 3], dtype=np.int64) * 10**9,
        {"Q": np.array([0.1, np.nan, np.nan]), "T": np.array([1e20, 2.5, np.nan])},
        time_unit=results_pb2.TIME_UNIT_SECONDS,
    )
    body, lines = encode_lines(chunk)
    assert lines == 2
    assert body.decode() == "heat,asset=b\\ 1 Q=0.1,T=1e+20 1\nheat,asset=b\\ 1 T=2.5 2\n"
    assert escape_key("a,b=c d") == "a\\,b\\=c\\ d"
    assert ident('x"y') == '"x\\"y"' and literal("it's") == "'it\\'s'"


def test_line_protocol_without_missing_values_round_trips_floats():
    values = np.random.default_rng(1).normal(size=1000) * 1e3
    chunk = Chunk(KEY, np.arange(1000, dtype=np.int64), {"Q": values})
    body, lines = encode_lines(chunk)
    parsed = np.array([float(line.split(" ")[-2].split("=")[1]) for line in body.decode().splitlines()])
    assert lines == 1000
    np.testing.assert_array_equal(parsed, values)  # shortest repr, nothing lost


def test_downsample_aggregates_windows_aligned_on_the_epoch():
    ts = np.array([5, 6, 9, 10, 11, 25])
    fields = {"Q": np.array([1.0, np.nan, 3.0, 4.0, 8.0, np.nan])}
    expected = {
        "mean": [2.0, 6.0, np.nan],
        "min": [1.0, 4.0, np.nan],
        "max": [3.0, 8.0, np.nan],
        "last": [3.0, 8.0, np.nan],
    }
    for aggregate, values in expected.items():
        out_ts, out = downsample(ts, fields, 10, aggregate)
        np.testing.assert_array_equal(out_ts, [0, 10, 20])
        np.testing.assert_array_equal(out["Q"], values)
