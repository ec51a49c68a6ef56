"""bench_dispatch runs against a real gateway and worker and reports its figures (no timing asserts)."""

from __future__ import annotations

import pytest

from tests.gateway.mesh import Mesh
from tests.support import run
from workmesh.services.bench import bench_dispatch
from workmesh.v1 import common_pb2 as c
from workmesh.workers.examples.basic import echo


def test_bench_dispatch_reports_every_figure_for_every_path():
    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([echo], capacity=8)
            figures = await bench_dispatch(f"127.0.0.1:{mesh.port}", jobs=30, concurrency=4, warmup=2)
            assert figures["jobs"] == 30 and figures["concurrency"] == 4
            for path in ("unary", "unary_batch", "stream"):
                assert figures[f"{path}_failed"] == 0 and figures[f"{path}_retried"] == 0
                assert figures[f"{path}_burst_jobs_per_s"] > 0
                assert 0 < figures[f"{path}_p50_ms"] <= figures[f"{path}_p99_ms"] <= figures[f"{path}_max_ms"]
            # Per path 2 warm-up + 30 burst + 30 sequential jobs went through the gateway.
            jobs = await mesh.store.list_jobs(limit=300)
            assert len(jobs) == 3 * 62
            assert all(j.status == c.JOB_STATUS_SUCCEEDED for j in jobs)

    run(main())


def test_bench_dispatch_measures_one_path_on_request():
    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([echo], capacity=8)
            figures = await bench_dispatch(f"127.0.0.1:{mesh.port}", jobs=5, concurrency=2, warmup=0, paths=("stream",))
            assert figures["stream_failed"] == 0
            assert not any(key.startswith("unary_") for key in figures)
            assert len(await mesh.store.list_jobs(limit=100)) == 10

    run(main())


def test_bench_dispatch_rejects_bad_arguments():
    with pytest.raises(ValueError, match="jobs"):
        run(bench_dispatch("127.0.0.1:1", jobs=0, concurrency=1))
    with pytest.raises(ValueError, match="paths"):
        run(bench_dispatch("127.0.0.1:1", jobs=1, concurrency=1, paths=("carrier-pigeon",)))


def test_bench_dispatch_batched_watch_follows_each_job_to_its_end():
    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([echo], capacity=4)
            figures = await bench_dispatch(
                f"127.0.0.1:{mesh.port}", jobs=6, concurrency=3, warmup=1, paths=("unary_batch",)
            )
            assert figures["unary_batch_failed"] == 0 and figures["unary_batch_retried"] == 0
            assert not any(key.startswith(("unary_burst", "stream_")) for key in figures)
            # Each round trip ended at its job's terminal event: every job had ended by then.
            jobs = await mesh.store.list_jobs(limit=100)
            assert len(jobs) == 13 and all(j.status == c.JOB_STATUS_SUCCEEDED for j in jobs)

    run(main())
