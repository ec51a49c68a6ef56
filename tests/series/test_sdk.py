"""``ctx.series`` against a real in-process results server (Parquet store) and a real registry.

The worker runs in-process (its jobs started with ``Worker.execute`` as the gRPC servicer does);
the results service is the real gRPC server over a real Parquet store on a free port.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.results.support import new_job, serving
from tests.series.workflows import profile, series_async, series_sync
from tests.support import eventually_async, run
from tests.workers.helpers import execute_request
from workmesh.registry import EmbeddedRegistry, Registrar, ServiceRegistration
from workmesh.services.core.errors import NotFound
from workmesh.services.results import ParquetStore
from workmesh.workers import Context, Param, Worker, workflow
from workmesh.workers._series import ResultsConnection

TYPES = ["series-async", "series-sync"]


async def run_job(worker: Worker, job_id: str, workflow_type: str, attempt: int = 1, **params):
    job, after = worker.execute(execute_request(job_id, workflow_type, attempt=attempt, **params))
    return [event async for event in job.follow(after)]


def refs_by_key(result) -> dict[tuple, object]:
    return {(r.measurement, r.field, tuple(sorted(r.tags.items()))): r for r in result.series}


@pytest.mark.parametrize("workflow_type", TYPES)
def test_job_result_lists_refs_and_the_values_read_back_are_the_written_ones(tmp_path, workflow_type):
    async def body():
        async with serving(ParquetStore(tmp_path / "series")) as client:
            worker = Worker([series_async, series_sync], series_factory=ResultsConnection(f"127.0.0.1:{client.port}"))
            job = new_job()
            events = await run_job(worker, job, workflow_type, steps=30, scale=2.0)
            assert events[-1].WhichOneof("payload") == "result", events[-1]
            refs = refs_by_key(events[-1].result)
            assert set(refs) == {
                ("heat", "Q", (("asset", "b1"),)),
                ("heat", "T", (("asset", "b1"),)),
                ("outdoor", "T", ()),
            }
            q = refs[("heat", "Q", (("asset", "b1"),))]
            assert (q.store, q.host, q.count, q.unit) == ("parquet", f"127.0.0.1:{client.port}", 30, "kW")
            ts, q_values, t_values = profile(30, 2.0)
            (heat,) = await client.read(job, measurement="heat")
            np.testing.assert_array_equal(heat.timestamps, ts.astype("datetime64[ns]").view(np.int64))
            np.testing.assert_array_equal(heat.fields["Q"], q_values)
            np.testing.assert_array_equal(heat.fields["T"], t_values)
            await worker.series_factory.close()

    run(body())


@pytest.mark.parametrize("workflow_type", TYPES)
def test_retried_attempt_writes_fresh(tmp_path, workflow_type):
    async def body():
        async with serving(ParquetStore(tmp_path / "series")) as client:
            worker = Worker([series_async, series_sync], series_factory=ResultsConnection(f"127.0.0.1:{client.port}"))
            job = new_job()
            first = await run_job(worker, job, workflow_type, steps=20, fail_first=True)
            assert first[-1].error.code == "RETRYABLE_ERROR" and first[-1].error.retryable
            stored = {s.key.measurement: s.count for s in await client.list_series(job)}
            assert stored["heat"] == 20, "attempt 1 stored its heat series before failing"
            # Attempt 2 writes the same timestamps again: without fresh they would be rejected.
            second = await run_job(worker, job, workflow_type, attempt=2, steps=20, fail_first=True)
            assert second[-1].WhichOneof("payload") == "result", second[-1]
            assert {s.key.measurement: s.count for s in await client.list_series(job)} == {"heat": 20, "outdoor": 20}
            await worker.series_factory.close()

    run(body())


def test_without_fresh_the_same_timestamps_are_rejected(tmp_path):
    """The control of the test above: a first attempt over stored data fails to store its series."""

    async def body():
        async with serving(ParquetStore(tmp_path / "series")) as client:
            worker = Worker([series_async], series_factory=ResultsConnection(f"127.0.0.1:{client.port}"))
            job = new_job()
            ts, q, t = profile(20, 1.0)
            await client.write(job, "heat", ts, tags={"asset": "b1"}, Q=q, T=t)
            events = await run_job(worker, job, "series-async", steps=20)
            error = events[-1].error
            assert error.code == "RESULTS_WRITE_FAILED" and not error.retryable
            assert "timestamp" in error.message
            await worker.series_factory.close()

    run(body())


@pytest.mark.parametrize("workflow_type", TYPES)
def test_failed_job_aborts_its_writer_and_unacknowledged_data_is_dropped(tmp_path, workflow_type):
    async def body():
        async with serving(ParquetStore(tmp_path / "series")) as client:
            worker = Worker([series_async, series_sync], series_factory=ResultsConnection(f"127.0.0.1:{client.port}"))
            job = new_job()
            events = await run_job(worker, job, workflow_type, steps=10, fail=True)
            assert events[-1].error.code == "HANDLER_ERROR"
            # Small writes stay buffered until the writer closes; the abort drops them.
            with pytest.raises(NotFound):
                await client.list_series(job)
            await worker.series_factory.close()

    run(body())


def test_cancelled_job_keeps_only_acknowledged_data(tmp_path):
    async def body():
        async with serving(ParquetStore(tmp_path / "series")) as client:
            worker = Worker([series_async], series_factory=ResultsConnection(f"127.0.0.1:{client.port}"))
            job_id = new_job()
            job, _ = worker.execute(execute_request(job_id, "series-async", steps=10, wait_cancel=True))
            events = []

            async def follow():
                async for event in job.follow():
                    events.append(event)

            follower = asyncio.create_task(follow())
            while job.ctx._series is None or job.ctx._series._writer is None:
                await asyncio.sleep(0.01)  # bounded by the test timeout; the handler writes at once
            worker.cancel(job_id, "test")
            await follower
            assert events[-1].error.code == "CANCELLED"
            with pytest.raises(NotFound):  # nothing was acknowledged: nothing stays
                await client.list_series(job_id)
            await worker.series_factory.close()

    run(body())


def test_found_through_the_registry_and_one_channel_for_all_jobs(tmp_path):
    async def body():
        async with EmbeddedRegistry() as registry, serving(ParquetStore(tmp_path / "series")) as client:
            registration = ServiceRegistration(
                name="workmesh-results", service_id="workmesh-results-t", address="127.0.0.1", port=client.port
            )
            async with Registrar(registry.config, [registration]):
                connection = ResultsConnection(registry=registry.config)
                worker = Worker([series_async], series_factory=connection)
                jobs = [new_job(), new_job()]
                for job in jobs:
                    events = await run_job(worker, job, "series-async", steps=5)
                    assert events[-1].WhichOneof("payload") == "result", events[-1]
                    assert events[-1].result.series[0].host == f"127.0.0.1:{client.port}"
                first = await connection.client()
                assert connection.address == "" and (await connection.client()) is first
                for job in jobs:
                    assert {s.key.measurement for s in await client.list_series(job)} == {"heat", "outdoor"}
                await connection.close()

    run(body())


@pytest.mark.parametrize("workflow_type", TYPES)
def test_no_results_service_registered_is_a_clear_retryable_error(workflow_type):
    async def body():
        async with EmbeddedRegistry() as registry:
            worker = Worker([series_async, series_sync], series_factory=ResultsConnection(registry=registry.config))
            events = await run_job(worker, new_job(), workflow_type, steps=5)
            error = events[-1].error
            assert error.code == "RESULTS_UNAVAILABLE" and error.retryable
            assert "no passing 'workmesh-results'" in error.message and registry.address in error.message

    run(body())


def test_one_time_unit_per_job_and_integer_timestamps_in_it(tmp_path):
    @workflow(name="units", params=[Param.int("n", default=4)])
    async def units(ctx: Context, n: int) -> dict:
        seconds = 1_900_000_000 + 3600 * np.arange(n)
        await ctx.series("m", time_unit="s").write(seconds, v=np.ones(n))
        try:
            ctx.series("m2", time_unit="ms")
        except Exception as exc:  # noqa: BLE001 - reported in the outputs
            return {"error": str(exc)}
        return {}

    async def body():
        async with serving(ParquetStore(tmp_path / "series")) as client:
            worker = Worker([units], series_factory=ResultsConnection(f"127.0.0.1:{client.port}"))
            job = new_job()
            events = await run_job(worker, job, "units")
            outputs = events[-1].result.outputs
            assert outputs["error"].startswith("time_unit: one job writes all its series with one time unit")
            (series,) = await client.read(job, time_unit="s")
            assert series.timestamps.tolist() == [1_900_000_000 + 3600 * i for i in range(4)]
            await worker.series_factory.close()

    run(body())


def test_results_service_gone_is_retryable_and_the_next_job_reconnects(tmp_path):
    from workmesh.services.results import ResultsConfig, create_server

    async def body():
        server, port = create_server(ResultsConfig(listen="127.0.0.1:0"), ParquetStore(tmp_path / "a"))
        await server.start()
        connection = ResultsConnection(f"127.0.0.1:{port}")
        worker = Worker([series_async], series_factory=connection)
        ok = await run_job(worker, new_job(), "series-async", steps=5)
        assert ok[-1].WhichOneof("payload") == "result", ok[-1]
        await server.stop(0)
        await server.results_store.close()
        # The flush of attempt 1 meets the stopped service: a retryable job error, channel dropped.
        gone = await run_job(worker, new_job(), "series-async", steps=5, fail_first=True)
        assert gone[-1].error.code == "RESULTS_UNAVAILABLE" and gone[-1].error.retryable, gone[-1]
        assert "unavailable" in gone[-1].error.message
        server, _ = create_server(ResultsConfig(listen=f"127.0.0.1:{port}"), ParquetStore(tmp_path / "b"))
        await server.start()
        try:

            async def succeeds() -> bool:
                # gRPC backs off reconnecting to an address that refused: jobs until then fail,
                # retryably (the gateway would try them again).
                again = await run_job(worker, new_job(), "series-async", steps=5)
                if again[-1].WhichOneof("payload") == "error":
                    assert again[-1].error.retryable, again[-1]
                    return False
                return True

            await eventually_async(succeeds, timeout=30, interval=0.2)
        finally:
            await connection.close()
            await server.stop(0)
            await server.results_store.close()

    run(body())
