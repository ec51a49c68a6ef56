"""bench_progress runs against a real gateway and worker and reports its figures (no timing asserts)."""

from __future__ import annotations

from tests.gateway.mesh import Mesh
from tests.support import run
from workmesh.services.bench import bench_progress
from workmesh.v1 import common_pb2 as c
from workmesh.workers.examples.loadgen import progress_load


def test_bench_progress_counts_every_event_once_in_order_and_measures_lag():
    worker_reads = iter(range(0, 100, 3))  # the worker's CPU seconds: 3 more at each read

    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([progress_load], capacity=8, progress_interval=0.0)
            figures = await bench_progress(
                f"127.0.0.1:{mesh.port}",
                events=300,
                jobs=2,
                watchers=4,
                rate=50.0,
                seconds=0.5,
                rss=lambda: 123 * 2**20,
                cpu=lambda: 7.5,
                worker_cpu=lambda: float(next(worker_reads)),
            )
            for path in ("watch", "watch_batch", "stream"):
                assert figures[f"{path}_received"] == figures[f"{path}_sent"] == 300
                assert figures[f"{path}_gaps"] == 0 and figures[f"{path}_succeeded"]
                assert figures[f"{path}_events_per_s"] > 0
            assert figures["fanout_events_per_job"] == 25 and figures["fanout_incomplete_watchers"] == 0
            assert 0 < figures["fanout_deliveries"] <= 4 * 25
            assert 0 <= figures["fanout_lag_p50_ms"] <= figures["fanout_lag_p99_ms"] <= figures["fanout_lag_max_ms"]
            assert figures["fanout_gateway_rss_peak_mb"] == 123.0
            # Lag per second of the run (each second up to the last event counted), the
            # subscriptions apart, CPU of the gateway (the callable: unchanged) and of the client.
            by_second = figures["fanout_lag_p99_by_second_ms"]
            assert len(by_second) >= 1 and max(by_second) <= figures["fanout_lag_max_ms"]
            assert 0 < figures["fanout_subscribe_p50_ms"] <= figures["fanout_subscribe_max_ms"]
            assert figures["fanout_gateway_cpu_s"] == 0.0 and figures["fanout_client_cpu_s"] > 0
            # The worker's: read once before and once after each fan-out.
            assert figures["fanout_worker_cpu_s"] == figures["fanout_latest_worker_cpu_s"] == 3.0
            assert figures["fanout_wall_s"] > 0
            stored = figures["fanout_stored_lag_p50_ms"], figures["fanout_stored_lag_p99_ms"]
            assert stored[0] <= stored[1] <= figures["fanout_lag_max_ms"]  # stored before received
            delivered = figures["fanout_delivered_lag_p50_ms"], figures["fanout_delivered_lag_p99_ms"]
            assert 0 <= delivered[0] <= delivered[1] <= figures["fanout_lag_max_ms"]
            # The same with latest_progress watchers: each sees its job's last progress and end.
            assert figures["fanout_latest_events_per_job"] == 25 and figures["fanout_latest_incomplete_watchers"] == 0
            assert 0 < figures["fanout_latest_deliveries"] <= 4 * 25
            assert figures["fanout_latest_deliveries"] + figures["fanout_latest_skipped"] <= 4 * 25 + 4 * 5
            jobs = await mesh.store.list_jobs(limit=10)
            assert len(jobs) == 7 and all(j.status == c.JOB_STATUS_SUCCEEDED for j in jobs)
            # Every progress call became a stored event (coalescing off): QUEUED, DISPATCHED,
            # RUNNING, 300 progress, result, SUCCEEDED.
            single = [j for j in jobs if j.last_seq > 100]
            assert len(single) == 3 and all(j.last_seq == 305 for j in single)

    run(main())
