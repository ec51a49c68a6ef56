"""After DeleteSeries is acknowledged, no write of that job is stored again (both stores)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.results.support import HOUR, new_job, serving
from tests.support import run
from workmesh.services.core.errors import FailedPrecondition, NotFound


def hours(lo: int, hi: int) -> np.ndarray:
    return np.arange(lo, hi, dtype=np.int64) * HOUR


async def raw_series(store, job: str) -> list:
    """What the store itself holds for the job, past the tombstone check."""
    inner = getattr(store, "store", store)
    try:
        return await inner.list_series(job)
    except NotFound:
        return []


def test_a_late_write_after_delete_is_refused_and_nothing_comes_back(make_store):
    async def scenario():
        job = new_job()
        async with serving(make_store()) as client:
            await client.write(job, "heat", hours(0, 10), tags={"asset": "a"}, Q=np.ones(10))
            assert await client.delete(job) == 1
            late = client.writer(job)
            await late.series("heat", asset="a").write(hours(10, 20), Q=np.ones(10))
            with pytest.raises(FailedPrecondition, match=f"job '{job}' was deleted"):
                await late.close()
            for call in (client.list_series(job), client.read(job)):
                with pytest.raises(NotFound, match=f"job '{job}' was deleted"):
                    await call
            assert await raw_series(client.server_store, job) == []

    run(scenario())


def test_delete_while_a_writer_streams(make_store):
    async def scenario():
        job = new_job()
        async with serving(make_store(), batch_values=1_000) as client:
            writer = client.writer(job, chunk_bytes=4_000)
            handle = writer.series("heat", asset="a")
            await handle.write(hours(0, 500), Q=np.ones(500))
            await writer.flush()
            assert writer.acked_values == 500
            assert await client.delete(job) == 1
            with pytest.raises(FailedPrecondition, match="was deleted"):
                for i in range(1, 50):
                    await handle.write(hours(500 * i, 500 * (i + 1)), Q=np.ones(500))
                    await writer.flush()
            await writer.abort()
            assert await raw_series(client.server_store, job) == []

    run(scenario())


def test_a_comparison_naming_a_deleted_job_fails_naming_it(make_store):
    async def scenario():
        kept, gone = new_job(), new_job()
        async with serving(make_store()) as client:
            for job in (kept, gone):
                await client.write(job, "heat", hours(0, 4), Q=np.ones(4))
            await client.delete(gone)
            with pytest.raises(NotFound, match=f"job '{gone}' was deleted"):
                await client.read([kept, gone], fields=["Q"])
            assert len(await client.read([kept])) == 1

    run(scenario())


def test_a_job_without_series_is_marked_deleted_too(make_store):
    async def scenario():
        job = new_job()
        async with serving(make_store()) as client:
            with pytest.raises(NotFound):
                await client.delete(job)
            with pytest.raises(FailedPrecondition, match="was deleted"):
                await client.write(job, "heat", hours(0, 4), Q=np.ones(4))
            assert await raw_series(client.server_store, job) == []

    run(scenario())


def test_a_retried_attempt_starts_over_but_not_on_a_deleted_job(make_store):
    async def scenario():
        job = new_job()
        async with serving(make_store()) as client:
            await client.write(job, "heat", hours(0, 10), Q=np.ones(10))
            retry = client.writer(job, fresh=True)  # DeleteSeries(restart=true), then writes
            await retry.series("heat").write(hours(0, 5), Q=np.zeros(5))
            await retry.close()
            [series] = await client.read(job)
            assert len(series.timestamps) == 5
            await client.delete(job)
            again = client.writer(job, fresh=True)
            with pytest.raises(FailedPrecondition, match="was deleted"):
                await again.series("heat").write(hours(0, 5), Q=np.zeros(5))
                await again.close()
            await again.abort()

    run(scenario())


def test_tombstones_survive_a_restart_and_hold_across_replicas(make_store):
    async def scenario():
        job = new_job()
        async with serving(make_store(), batch_values=1_000) as one, serving(make_store()) as two:
            writer = one.writer(job, chunk_bytes=4_000)
            handle = writer.series("heat")
            await handle.write(hours(0, 500), Q=np.ones(500))
            await writer.flush()
            assert await two.delete(job) == 1  # another replica over the same data
            with pytest.raises(FailedPrecondition, match="was deleted"):
                for i in range(1, 50):
                    await handle.write(hours(500 * i, 500 * (i + 1)), Q=np.ones(500))
                    await writer.flush()
            await writer.abort()
            assert await raw_series(one.server_store, job) == []
        async with serving(make_store()) as restarted:
            with pytest.raises(NotFound, match="was deleted"):
                await restarted.list_series(job)
            with pytest.raises(FailedPrecondition, match="was deleted"):
                await restarted.write(job, "heat", hours(0, 4), Q=np.ones(4))

    run(scenario())
