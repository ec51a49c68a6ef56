"""Requests that cannot be parsed, and a full disk: statuses a client can act on, never INTERNAL."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from tests.results.support import HOUR, new_job, serving
from tests.support import run
from workmesh.services.core.errors import NotFound, ResourceExhausted
from workmesh.services.results import ParquetStore

GARBAGE = b"\xff\xff\xff\xff"  # a field tag with a truncated varint: not any message


async def _status(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        if hasattr(call, "__aiter__"):
            async for _ in call:
                pass
        else:
            await call
    return caught.value


@pytest.mark.parametrize(
    "method, streaming",
    [
        ("WriteSeries", (True, True)),
        ("ReadSeries", (False, True)),
        ("ListSeries", (False, False)),
        ("DeleteSeries", (False, False)),
    ],
)
def test_unparseable_request_is_invalid_argument(make_store, method, streaming):
    async def scenario():
        async with serving(make_store()) as client:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{client.port}") as channel:
                path = f"/workmesh.v1.Results/{method}"
                kind = {
                    (True, True): channel.stream_stream,
                    (False, True): channel.unary_stream,
                    (False, False): channel.unary_unary,
                }[streaming]
                rpc = kind(path)
                error = await _status(rpc(iter([GARBAGE]) if streaming[0] else GARBAGE))
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
            assert "is not a valid workmesh.v1." in error.details()
            # the server still serves
            with pytest.raises(NotFound):
                await client.list_series(new_job())

    run(scenario())


def test_garbage_item_after_good_ones_names_the_item(make_store):
    async def scenario():
        job = new_job()
        async with serving(make_store()) as client:
            from tests.results.test_bad_input import chunk
            from workmesh.v1 import results_pb2

            good = results_pb2.WriteSeriesRequest(chunk=chunk(job, [0, HOUR], Q=[1.0, 2.0])).SerializeToString()
            async with grpc.aio.insecure_channel(f"127.0.0.1:{client.port}") as channel:
                rpc = channel.stream_stream("/workmesh.v1.Results/WriteSeries")
                error = await _status(rpc(iter([good, GARBAGE])))
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert error.details().startswith("request[1]: is not a valid workmesh.v1.WriteSeriesRequest")

    run(scenario())


def test_full_disk_is_resource_exhausted_and_keeps_what_was_acknowledged(small_disk):
    async def scenario():
        disk = small_disk(3 << 20)
        store = ParquetStore(disk / "series")
        job = new_job()
        rng = np.random.default_rng(1)  # random values hardly compress: the disk fills quickly
        async with serving(store, batch_values=20_000) as client:
            writer = client.writer(job)
            with pytest.raises(ResourceExhausted, match="disk is full.*nothing of this batch"):
                for i in range(200):
                    ts = (np.arange(10_000) + i * 10_000) * HOUR
                    await writer.series("heat", asset="a").write(ts, Q=rng.random(10_000))
                    await writer.flush()
            acknowledged = writer.acked_values
            await writer.abort()
            assert acknowledged > 0
            stored = await client.read(job)
            assert sum(len(s.timestamps) for s in stored) == acknowledged
            # nothing but the acknowledged parts and the catalogue is left on the disk
            leftovers = [p.name for p in (disk / "series" / job).rglob("*") if p.name.startswith(".")]
            assert leftovers == []
            # space freed: the service writes again
            await client.delete(job)
            other = new_job()
            await client.write(other, "heat", np.arange(10) * HOUR, Q=np.ones(10))
            assert len((await client.read(other))[0].timestamps) == 10

    run(scenario())
