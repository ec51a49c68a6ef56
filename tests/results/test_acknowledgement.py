"""WriteSeries acknowledges stored batches; a broken call keeps what was acknowledged, nothing else."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from tests.results.support import HOUR, new_job, serving, visible
from tests.support import run
from workmesh.services.clients import SeriesKey
from workmesh.services.clients._model import encode_chunk
from workmesh.services.core.errors import InvalidArgument
from workmesh.v1 import results_pb2


def request(job: str, hours: range, *, flush: bool = False, value: float = 1.0) -> results_pb2.WriteSeriesRequest:
    ts = np.array(hours, dtype=np.int64) * HOUR
    chunk = encode_chunk(SeriesKey(job, "heat", (("asset", "b1"),)), ts, {"Q": np.full(len(ts), value)})
    return results_pb2.WriteSeriesRequest(chunk=chunk, flush=flush)


def test_cancelled_call_keeps_acknowledged_chunks_only(make_store):
    async def scenario():
        job = new_job()
        async with serving(make_store()) as client:
            call = client.stub.WriteSeries()
            await call.write(request(job, range(0, 10), flush=True))
            ack = await call.read()
            assert (ack.acked_chunks, ack.values, ack.done) == (1, 10, False)
            await call.write(request(job, range(10, 20)))  # buffered, never acknowledged
            call.cancel()

            listed = await client.list_series(job)
            assert [(s.count, s.end) for s in listed] == [(10, 9 * HOUR)]
            # the unacknowledged hours are free: a new call writes them
            refs = await client.write(job, "heat", np.arange(10, 15) * HOUR, tags={"asset": "b1"}, Q=np.full(5, 2.0))
            assert [r.count for r in refs] == [5]
            got = (await client.read(job))[0]
            np.testing.assert_array_equal(got.fields["Q"], [1.0] * 10 + [2.0] * 5)

    run(scenario())


def test_invalid_chunk_drops_the_unacknowledged_rest(make_store):
    async def scenario():
        job = new_job()
        async with serving(make_store()) as client:
            call = client.stub.WriteSeries()
            await call.write(request(job, range(0, 10), flush=True))
            assert (await call.read()).acked_chunks == 1
            await call.write(request(job, range(10, 20)))
            await call.write(request(job, range(15, 30)))  # overlaps the previous chunk
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call.read()
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "chunk[2].timestamps" in caught.value.details()
            assert [s.count for s in await visible(client, job)] == [10]

    run(scenario())


def test_batches_are_acknowledged_as_they_are_stored(make_store):
    async def scenario():
        job = new_job()
        async with serving(make_store(), batch_values=20) as client:  # a batch every two chunks
            requests = [request(job, range(10 * i, 10 * i + 10)) for i in range(6)]
            acks = [(r.acked_chunks, r.values, r.done) async for r in client.stub.WriteSeries(iter(requests))]
            assert acks[:-1] == [(2, 20, False), (4, 40, False), (6, 60, False)]
            assert acks[-1] == (6, 60, True)
            assert [s.count for s in await client.list_series(job)] == [60]

    run(scenario())


def test_final_response_lists_the_series_refs(make_store):
    async def scenario():
        job = new_job()
        async with serving(make_store()) as client:
            requests = [request(job, range(0, 5)), request(job, range(5, 8))]
            responses = [r async for r in client.stub.WriteSeries(iter(requests))]
            final = responses[-1]
            assert final.done and final.acked_chunks == 2
            assert [(r.measurement, dict(r.tags), r.field, r.count, r.database) for r in final.series] == [
                ("heat", {"asset": "b1"}, "Q", 8, job)
            ]
            assert final.series[0].store in ("parquet", "influxdb")

    run(scenario())


def test_second_call_with_earlier_timestamps(make_store):
    """Parquet rejects rewriting stored timestamps; InfluxDB overwrites the points (documented)."""

    async def scenario():
        job = new_job()
        store = make_store()
        async with serving(store) as client:
            await client.write(job, "heat", np.arange(10) * HOUR, tags={"asset": "b1"}, Q=np.zeros(10))
            if store.kind == "parquet":
                with pytest.raises(InvalidArgument, match="is not after the last one stored"):
                    await client.write(job, "heat", np.arange(5, 12) * HOUR, tags={"asset": "b1"}, Q=np.ones(7))
                expected = np.zeros(10)
            else:
                await client.write(job, "heat", np.arange(5, 12) * HOUR, tags={"asset": "b1"}, Q=np.ones(7))
                expected = np.array([0.0] * 5 + [1.0] * 7)
            np.testing.assert_array_equal((await client.read(job))[0].fields["Q"], expected)

    run(scenario())


def test_flush_acknowledges_chunks_with_nothing_to_store(make_store):
    async def scenario():
        job = new_job()
        async with serving(make_store()) as client:
            call = client.stub.WriteSeries()
            await call.write(request(job, range(0, 3), flush=True, value=np.nan))  # only missing values
            ack = await call.read()
            assert (ack.acked_chunks, ack.values, ack.done) == (1, 0, False)
            await call.done_writing()
            final = await call.read()
            assert (final.acked_chunks, final.done, list(final.series)) == (1, True, [])
            assert await visible(client, job) == []

    run(scenario())


def test_fresh_writer_replaces_an_earlier_attempt(make_store):
    async def scenario():
        job = new_job()
        async with serving(make_store()) as client:
            call = client.stub.WriteSeries()  # attempt 1 stores part of its series, then dies
            await call.write(request(job, range(0, 10), flush=True))
            assert (await call.read()).acked_chunks == 1
            call.cancel()
            writer = client.writer(job, fresh=True)  # attempt 2 writes everything again
            await writer.series("heat", asset="b1").write(np.arange(20) * HOUR, Q=np.full(20, 2.0))
            assert [r.count for r in await writer.close()] == [20]
            got = (await client.read(job))[0]
            np.testing.assert_array_equal(got.fields["Q"], np.full(20, 2.0))

    run(scenario())
