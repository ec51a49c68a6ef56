"""Packed ReadSeries responses: the hand-made encoding is protobuf's, the parsed views are the arrays,
bad bytes fail as protobuf says, and a real service answers a packed read with the same series as
a chunked one (several jobs aligned, irregular and regular times, units, seconds, long series)."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf.message import DecodeError

from tests.results.support import HOUR, new_job, serving
from tests.support import run
from workmesh.services.clients._model import SeriesKey, chunk_timestamps
from workmesh.services.clients._packed import PackWriter, key_bytes, parse_packed, parse_response
from workmesh.services.clients._results import _series as join
from workmesh.services.clients._wire import parse_read_response
from workmesh.services.results import ParquetStore
from workmesh.services.results._read_messages import RESPONSE_BYTES
from workmesh.v1 import results_pb2

KEY = SeriesKey("job-1", "heat", (("asset", "b 1"), ("zone", "ü")))
REST = results_pb2.SeriesKey(measurement=KEY.measurement, tags=dict(KEY.tags)).SerializeToString()

SERIES = [  # timestamps, fields, units, step given
    (np.array([10, 20, 30]), {"Q": np.array([1.0, 2.5, -3.0]), "T": np.zeros(3)}, {"Q": "kW"}, 0),
    (np.array([-7200, -3600, 0, 3600]), {"Q": np.ones(4)}, {}, 3600),
    (np.array([0, 1, 5]), {"Q": np.array([np.nan, 1e300, 5e-324])}, {"Q": "°C"}, 0),
    (np.array([2**52]), {"Q": np.array([7.0])}, {}, 0),
]


def test_key_bytes_are_the_serialized_key():
    assert results_pb2.SeriesKey.FromString(key_bytes("job-1", REST)) == KEY.to_pb()


def test_packed_messages_are_protobuf_and_parse_into_views_of_the_arrays():
    writer = PackWriter(1 << 20)
    for ts, fields, units, step in SERIES:
        assert writer.add(key_bytes(KEY.job_id, REST), ts, fields, units, step=step) is None
    raw = writer.finish()
    assert raw is not None and writer.finish() is None
    message = results_pb2.ReadSeriesResponse.FromString(raw)
    assert not message.chunks and len(message.packed) == len(SERIES)
    assert [p.time_step for p in message.packed] == [10, 3600, 0, 0]  # the first found regular
    assert list(message.packed[0].units) == ["kW", ""] and not message.packed[1].units
    chunks = parse_packed(raw)
    assert chunks is not None and len(chunks) == len(SERIES)
    assert parse_response(raw)[0].key == KEY.to_pb()
    for chunk, (ts, fields, units, _) in zip(chunks, SERIES, strict=True):
        assert chunk.key == KEY.to_pb()
        np.testing.assert_array_equal(chunk_timestamps(chunk), ts)
        assert [f.name for f in chunk.fields] == list(fields)
        assert {f.name: f.unit for f in chunk.fields if f.unit} == units
        for column in chunk.fields:
            assert isinstance(column.values, memoryview) and column.values.obj is raw  # a view, no copy
            np.testing.assert_array_equal(np.frombuffer(column.values, "<f8"), fields[column.name])


def test_a_full_message_is_handed_out_when_the_limit_is_reached():
    writer = PackWriter(100)
    out = [writer.add(key_bytes(f"j{i}", REST), np.arange(8), {"Q": np.arange(8.0)}, {}) for i in range(4)]
    assert out[0] is not None and all(m is not None for m in out)  # 64 bytes of values + the header
    assert writer.finish() is None
    assert [c.key.job_id for m in out for c in parse_response(m)] == ["j0", "j1", "j2", "j3"]


def test_bad_packed_bytes_fail_as_protobuf_says():
    writer = PackWriter(1 << 20)
    writer.add(key_bytes("job-1", REST), np.array([1, 5]), {"Q": np.ones(2)}, {})
    raw = writer.finish()
    assert raw is not None
    with pytest.raises(DecodeError):  # truncated: protobuf's verdict
        results_pb2.ReadSeriesResponse.FromString(raw[:-3])
    with pytest.raises(DecodeError):
        parse_response(raw[:-3])
    # valid protobuf whose data does not hold the series' arrays: refused, not read past
    short = results_pb2.ReadSeriesResponse(packed=[results_pb2.PackedSeries(key=KEY.to_pb(), count=4, fields=["Q"])])
    short.data = b"\0" * 16
    with pytest.raises(DecodeError, match="data holds 16 bytes"):
        parse_response(short.SerializeToString())
    assert parse_response(b"") == []


def test_packed_and_chunked_reads_give_the_same_series(tmp_path):
    async def scenario():
        jobs = [new_job(), new_job(), new_job()]
        regular = 1000 * HOUR + np.arange(48, dtype=np.int64) * HOUR
        long = np.arange(RESPONSE_BYTES // 8 + 1000, dtype=np.int64) * 10**9  # longer than a message
        async with serving(ParquetStore(tmp_path / "series")) as client:
            for j, job in enumerate(jobs):
                writer = client.writer(job)
                for c in range(3):
                    ts = regular if j != 1 else regular[::2]  # job 2: every other hour (irregular once aligned)
                    await writer.series("heat", units={"Q": "kW"}, c=str(c)).write(ts, Q=ts * 0.0 + c + j, T=ts * 1.0)
                if j == 0:
                    await writer.series("long").write(long, Q=long * 0.5)
                await writer.close()

            async def read(packed: bool, **query) -> list:
                request = results_pb2.ReadSeriesRequest(job_ids=jobs, packed=packed, **query)
                return [chunks async for chunks in client._read_series(request)]

            for query in (
                {},
                {"fields": ["Q"]},
                {"time_unit": results_pb2.TIME_UNIT_SECONDS, "start": 3_600_000 + 7200},
            ):
                packed = await client.read(jobs, **_kwargs(query))
                chunked = _series(await read(False, **query))
                assert len(packed) == len(chunked) == (9 if "start" in query else 10)  # "long" is before start
                for a, b in zip(packed, chunked, strict=True):
                    assert (a.job_id, a.measurement, a.tags, a.units) == (b.job_id, b.measurement, b.tags, b.units)
                    np.testing.assert_array_equal(a.timestamps, b.timestamps)
                    assert a.fields.keys() == b.fields.keys()
                    for name in a.fields:
                        np.testing.assert_array_equal(a.fields[name], b.fields[name])
            # a packed read really answers packed: no chunks in any message
            request = results_pb2.ReadSeriesRequest(job_ids=jobs, packed=True)
            async for message in client.stub.ReadSeries(request):
                assert message.packed and not message.chunks

    run(scenario())


def _kwargs(query: dict) -> dict:
    out = dict(query)
    if "time_unit" in out:
        out["time_unit"] = "s"
    return out


def _series(messages: list) -> list:
    """The chunked messages' series, joined as the client joins them (reference: protobuf's parser)."""
    out, parts, axes = [], [], {}
    for chunks in messages:
        assert all(isinstance(c, type(chunks[0])) for c in chunks)
        for chunk in chunks:
            if parts and chunk.key != parts[0].key:
                out.append(join(parts, axes))
                parts = []
            parts.append(chunk)
    if parts:
        out.append(join(parts, axes))
    return out


def test_chunked_responses_still_parse():
    """A client reads an old service's chunked answer through the same deserializer."""
    writer = PackWriter(1 << 20)
    assert writer.finish() is None
    chunk = results_pb2.SeriesChunk(key=KEY.to_pb(), timestamps=np.array([1, 2], "<i8").tobytes())
    chunk.fields.add(name="Q", values=np.array([1.0, 2.0]).tobytes())
    raw = results_pb2.ReadSeriesResponse(chunks=[chunk]).SerializeToString()
    (parsed,) = parse_response(raw)
    assert [type(c) for c in parse_read_response(raw)] == [type(parsed)]
    np.testing.assert_array_equal(np.frombuffer(parsed.fields[0].values, "<f8"), [1.0, 2.0])
