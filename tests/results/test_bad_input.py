"""Bad input gets the right gRPC status and a detail naming the field and the rule."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from tests.results.support import HOUR, new_job, serving, visible
from tests.support import run
from workmesh.services.clients import MAX_CHUNK_BYTES, MAX_MESSAGE_BYTES, SeriesKey
from workmesh.services.clients._model import encode_chunk
from workmesh.services.core.errors import InvalidArgument
from workmesh.v1 import results_pb2, results_pb2_grpc


def chunk(job: str, ts, measurement: str = "heat", tags=None, **fields) -> results_pb2.SeriesChunk:
    key = SeriesKey(job, measurement, tuple(sorted((tags or {}).items())))
    return encode_chunk(
        key, np.asarray(ts, dtype=np.int64), {k: np.asarray(v, float) for k, v in fields.items()}, compact=False
    )


async def write_raw(client, *chunks: results_pb2.SeriesChunk) -> grpc.aio.AioRpcError:
    """Send chunks over a raw WriteSeries call; return the error it ends with."""
    call = client.stub.WriteSeries(iter([results_pb2.WriteSeriesRequest(chunk=c) for c in chunks]))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    return caught.value


def bad(job: str) -> dict[str, tuple[results_pb2.SeriesChunk, grpc.StatusCode, str]]:
    ts = np.arange(4) * HOUR
    unequal = chunk(job, ts, Q=[1.0, 2.0, 3.0, 4.0])
    unequal.fields[0].values = unequal.fields[0].values[:-8]
    return {
        "unequal lengths": (
            unequal,
            grpc.StatusCode.INVALID_ARGUMENT,
            "chunk[0].fields['Q'].values: has 3 values for 4 timestamps; arrays must have equal length",
        ),
        "inf": (
            chunk(job, ts, Q=[1.0, np.inf, 3.0, 4.0]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "chunk[0].fields['Q'].values: value inf at index 1 is infinite",
        ),
        "out of order": (
            chunk(job, [0, 2, 1, 3], Q=[1, 2, 3, 4]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "chunk[0].timestamps: must be strictly increasing; timestamp 1 at index 2 is out of order",
        ),
        "duplicated": (
            chunk(job, [0, 1, 1, 3], Q=[1, 2, 3, 4]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "chunk[0].timestamps: must be strictly increasing; timestamp 1 at index 2 is duplicated",
        ),
        "measurement name": (
            chunk(job, ts, measurement="heat demand", Q=[1, 2, 3, 4]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "chunk[0].key.measurement: 'heat demand' is not a valid name",
        ),
        "tag name": (
            chunk(job, ts, tags={"as set": "b1"}, Q=[1, 2, 3, 4]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "chunk[0].key.tags['as set']: 'as set' is not a valid name",
        ),
        "tag value": (
            chunk(job, ts, tags={"asset": "b\n1"}, Q=[1, 2, 3, 4]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "chunk[0].key.tags['asset']: 'b\\n1' is not a valid tag value",
        ),
        "field name time": (
            chunk(job, ts, time=[1, 2, 3, 4]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "chunk[0].fields.name: 'time' is not a valid name",
        ),
        "job id": (
            chunk("../etc", ts, Q=[1, 2, 3, 4]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "chunk[0].key.job_id: '../etc' is not a valid job id",
        ),
        "no fields": (
            chunk(job, ts),
            grpc.StatusCode.INVALID_ARGUMENT,
            "chunk[0].fields: at least one field is required",
        ),
    }


@pytest.mark.parametrize("case", list(bad("x")))
def test_bad_chunk_is_rejected_with_detail(make_store, case):
    async def scenario():
        job = new_job()
        async with serving(make_store()) as client:
            request, code, detail = bad(job)[case]
            error = await write_raw(client, request)
            assert error.code() == code
            assert detail in error.details()
            assert await visible(client, job) == []

    run(scenario())


def test_out_of_order_across_chunks_of_a_series(make_store):
    async def scenario():
        job = new_job()
        async with serving(make_store()) as client:
            first = chunk(job, np.arange(10) * HOUR, Q=np.zeros(10))
            again = chunk(job, np.arange(9, 12) * HOUR, Q=np.zeros(3))
            error = await write_raw(client, first, again)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert (
                "chunk[1].timestamps: must be strictly increasing within a series; the first timestamp "
                f"{9 * HOUR} is duplicated after {9 * HOUR}"
            ) in error.details()

    run(scenario())


def test_oversized_chunk_is_resource_exhausted(make_store):
    async def scenario():
        job = new_job()
        async with serving(make_store()) as client:
            n = MAX_CHUNK_BYTES // 16 + 1  # time + one field: just over the chunk limit
            error = await write_raw(client, chunk(job, np.arange(n), Q=np.zeros(n)))
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert f"exceed the limit of {MAX_CHUNK_BYTES} bytes per chunk" in error.details()

            # beyond the message limit gRPC itself refuses it (a client that may send that much)
            channel = grpc.aio.insecure_channel(
                f"127.0.0.1:{client.port}", options=[("grpc.max_send_message_length", 2 * MAX_MESSAGE_BYTES)]
            )
            try:
                n = MAX_MESSAGE_BYTES // 16 + 1
                stub = results_pb2_grpc.ResultsStub(channel)
                call = stub.WriteSeries(
                    iter([results_pb2.WriteSeriesRequest(chunk=chunk(job, np.arange(n), Q=np.zeros(n)))])
                )
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    async for _ in call:
                        pass
                assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            finally:
                await channel.close()
            assert await visible(client, job) == []

    run(scenario())


def test_one_call_writes_one_job(make_store):
    async def scenario():
        job, other = new_job(), new_job()
        async with serving(make_store()) as client:
            error = await write_raw(client, chunk(job, [1], Q=[1]), chunk(other, [1], Q=[1]))
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "chunk[1].key.job_id: one WriteSeries call writes one job" in error.details()

    run(scenario())


@pytest.mark.parametrize(
    "kwargs, detail",
    [
        ({"job_ids": []}, "job_ids: at least one job id is required"),
        ({"job_ids": ["a", "a"]}, "job_ids: a job id is given twice"),
        ({"job_ids": ["a b"]}, "job_ids[0]: 'a b' is not a valid job id"),
        ({"job_ids": ["a"], "window": 10}, "aggregate: is required with window"),
        ({"job_ids": ["a"], "aggregate": results_pb2.AGGREGATE_MEAN}, "window: is required with aggregate"),
        ({"job_ids": ["a"], "window": -1, "aggregate": results_pb2.AGGREGATE_MEAN}, "window: must not be negative"),
        ({"job_ids": ["a"], "fields": ["no good"]}, "fields[0]: 'no good' is not a valid name"),
        (
            {"job_ids": ["a"], "start": 2**62, "time_unit": results_pb2.TIME_UNIT_SECONDS},
            "start: out of the int64 nanosecond range",
        ),
    ],
)
def test_bad_read_request(make_store, kwargs, detail):
    async def scenario():
        async with serving(make_store()) as client:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                async for _ in client.stub.ReadSeries(results_pb2.ReadSeriesRequest(**kwargs)):
                    pass
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert detail in caught.value.details()

    run(scenario())


def test_client_checks_arrays_before_sending(make_store):
    async def scenario():
        async with serving(make_store()) as client:
            writer = client.writer(new_job())
            with pytest.raises(InvalidArgument, match=r"fields\['Q'\]: has 2 values for 3 timestamps"):
                await writer.series("heat").write([1, 2, 3], Q=[1.0, 2.0])
            with pytest.raises(InvalidArgument, match="timestamps: must be integers or datetime64"):
                await writer.series("heat").write([1.5], Q=[1.0])
            with pytest.raises(InvalidArgument, match="measurement: 'a b' is not a valid name"):
                writer.series("a b")
            assert await writer.close() == []

    run(scenario())


def test_server_error_reaches_the_writer_as_workmesh_error(make_store):
    async def scenario():
        job = new_job()
        async with serving(make_store()) as client:
            writer = client.writer(job)
            await writer.series("heat").write([0, 1], Q=[1.0, np.inf])
            with pytest.raises(InvalidArgument) as caught:
                await writer.close()
            assert caught.value.field == "chunk[0].fields['Q'].values"
            assert "is infinite" in caught.value.rule

    run(scenario())
