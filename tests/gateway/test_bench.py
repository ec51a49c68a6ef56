"""bench_dispatch runs against a real gateway and worker and reports its figures (no timing asserts)."""

from __future__ import annotations

import asyncio

import pytest
from workmesh.services.gateway import bench_dispatch
from workmesh.workers.examples.basic import echo

from tests.gateway.mesh import Mesh


def test_bench_dispatch_reports_every_figure():
    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([echo], capacity=8)
            figures = await bench_dispatch(f"127.0.0.1:{mesh.port}", jobs=30, concurrency=4, warmup=2)
            assert figures["jobs"] == 30 and figures["concurrency"] == 4
            assert figures["failed"] == 0 and figures["retried"] == 0
            assert figures["burst_jobs_per_s"] > 0 and 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
            # 2 warm-up + 30 burst + 30 sequential jobs went through the gateway.
            assert len(await mesh.store.list(limit=100)) == 62
    asyncio.run(main())


def test_bench_dispatch_rejects_bad_arguments():
    with pytest.raises(ValueError, match="jobs"):
        asyncio.run(bench_dispatch("127.0.0.1:1", jobs=0, concurrency=1))
