"""The hand-made series encoding and parsing agree with protobuf, byte for byte and verdict for verdict."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf.message import DecodeError

from workmesh.services.clients._model import SeriesKey, chunk_timestamps, decode_chunk, encode_chunk
from workmesh.services.clients._wire import (
    RawChunk,
    RawWriteRequest,
    chunk_message,
    encode_key,
    parse_read_response,
    parse_write_request,
    serialize,
)
from workmesh.v1 import results_pb2

KEY = SeriesKey("job-1", "heat", (("asset", "b 1"), ("zone", "ü")))

CASES = [  # timestamps, fields, units, unit
    (np.array([10, 20, 30]), {"Q": np.array([1.0, 2.5, -3.0]), "T": np.zeros(3)}, {"Q": "kW"}, 1),
    (np.array([-7200, -3600, 0, 3600]), {"Q": np.ones(4)}, {}, 4),
    (np.array([0, 1]), {"Q": np.array([np.nan, 1e300])}, {}, 0),
    (np.array([-5, 3, 10]), {"Q": np.arange(3.0)}, {"Q": "°C"}, 2),
    (np.array([2**52]), {"Q": np.array([5e-324])}, {}, 3),
]


@pytest.mark.parametrize("ts, fields, units, unit", CASES)
def test_encoding_is_what_protobuf_serializes(ts, fields, units, unit):
    reference = results_pb2.WriteSeriesRequest(chunk=encode_chunk(KEY, ts, fields, units, unit)).SerializeToString()
    assert chunk_message(encode_key(KEY), ts, fields, units, unit) == reference
    irregular = results_pb2.WriteSeriesRequest(
        chunk=encode_chunk(KEY, ts, fields, units, unit, compact=False)
    ).SerializeToString()
    assert chunk_message(encode_key(KEY), ts, fields, units, unit, compact=False) == irregular


@pytest.mark.parametrize("ts, fields, units, unit", CASES)
def test_parsed_views_decode_like_messages(ts, fields, units, unit):
    raw = chunk_message(encode_key(KEY), ts, fields, units, unit)
    request = parse_write_request(raw)
    assert isinstance(request, RawWriteRequest) and request.HasField("chunk") and not request.flush
    fast, slow = decode_chunk(request.chunk), decode_chunk(results_pb2.WriteSeriesRequest.FromString(raw).chunk)
    assert fast.key == slow.key == KEY and fast.units == slow.units and fast.time_unit == slow.time_unit
    np.testing.assert_array_equal(fast.timestamps, slow.timestamps)
    assert fast.fields.keys() == slow.fields.keys()
    for name in fast.fields:
        np.testing.assert_array_equal(fast.fields[name], slow.fields[name])
    (chunk,) = parse_read_response(raw)  # one chunk: the same bytes are a ReadSeriesResponse
    np.testing.assert_array_equal(chunk_timestamps(chunk), chunk_timestamps(request.chunk))


def test_several_chunks_and_flush():
    a = chunk_message(encode_key(KEY), np.array([1, 2]), {"Q": np.ones(2)}, {}, 4)
    b = chunk_message(encode_key(SeriesKey("job-1", "cool")), np.array([5]), {"P": np.zeros(1)}, {}, 4)
    chunks = parse_read_response(a + b)
    assert [c.key.measurement for c in chunks] == ["heat", "cool"] and all(isinstance(c, RawChunk) for c in chunks)
    flush = parse_write_request(results_pb2.WriteSeriesRequest(flush=True).SerializeToString())
    assert flush.flush and not flush.HasField("chunk")
    assert serialize(a) is a and serialize(results_pb2.WriteSeriesRequest(flush=True)) == b"\x10\x01"


def test_unknown_fields_are_skipped():
    raw = chunk_message(encode_key(KEY), np.array([1, 2]), {"Q": np.ones(2)}, {}, 4)
    extra = b"\x98\x06\x07" + b"\xa1\x06" + bytes(8) + b"\xaa\x06\x02hi" + b"\xad\x06" + bytes(4)  # fields 99..101
    request = parse_write_request(raw + extra)
    assert isinstance(request, RawWriteRequest)
    np.testing.assert_array_equal(decode_chunk(request.chunk).fields["Q"], [1.0, 1.0])


def test_uncommon_messages_are_left_to_protobuf():
    raw = chunk_message(encode_key(KEY), np.array([1, 2]), {"Q": np.ones(2)}, {}, 4)
    # a message field given twice is merged by protobuf: the parser hands it over
    twice = parse_write_request(raw + chunk_message(encode_key(KEY), np.array([3]), {"T": np.ones(1)}, {}, 4))
    assert isinstance(twice, results_pb2.WriteSeriesRequest)
    assert [f.name for f in twice.chunk.fields] == ["Q", "T"]
    # truncated; garbage; invalid UTF-8 in a name: protobuf's DecodeError
    for bad in (raw[:-3], b"\x0a\x05\xff\xff", b"\x0a\x03\x22\x01\x0a", b"\x0a\x06\x22\x04\x0a\x02\xc3\x28"):
        with pytest.raises(DecodeError):
            parse_write_request(bad)
        with pytest.raises(DecodeError):
            parse_read_response(bad)
    # a group (which protobuf skips as an unknown field): protobuf's message
    group = parse_write_request(b"\x0b\x0c")
    assert isinstance(group, results_pb2.WriteSeriesRequest) and not group.HasField("chunk")
