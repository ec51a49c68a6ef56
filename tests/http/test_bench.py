"""``workmesh bench http`` runs end to end (small counts; the figures themselves are not judged)."""

from __future__ import annotations

import pytest

from tests.support import run
from workmesh.services.bench import bench_http

pytestmark = pytest.mark.e2e


def test_bench_http_measures_both_paths_and_watchers(mesh):
    pid = next(p.popen.pid for p in mesh.processes if p.name == "gateway")
    figures = run(
        bench_http(
            mesh.console_url,
            mesh.gateway_address,
            pid,
            jobs=20,
            concurrency=4,
            warmup=2,
            watchers=10,
            watched_jobs=2,
            watch_seconds=1.0,
        )
    )
    assert figures["http_failed"] == 0 and figures["grpc_unary_failed"] == 0
    assert figures["http_burst_jobs_per_s"] > 0 and figures["http_vs_grpc_unary_burst"] > 0
    assert figures["watchers"] == 10 and figures["watch_events_per_s"] > 0
    assert figures["watch_rss_during_kib"] > 0
