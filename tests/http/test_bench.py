"""``workmesh bench http`` runs end to end (small counts; the figures themselves are not judged)."""

from __future__ import annotations

import pytest

from tests.support import run
from workmesh.services.bench import bench_http
from workmesh.services.bench._jobs_page import bench_jobs_page

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


def test_bench_jobs_page_times_pages_and_filters(tmp_path):
    figures = bench_jobs_page(f"sqlite:///{tmp_path / 'jobs.db'}", tmp_path, jobs=300, repeats=2)
    assert figures["jobs"] == 300 and figures["first_page"]["jobs_listed"] == 50
    assert figures["owner_oldest_job_only"]["jobs_listed"] == 1  # the needle, found by the server
    assert figures["steps_of_a_parent"]["jobs_listed"] == 10
    assert figures["label_no_match"]["jobs_listed"] == 0 and figures["label"]["p50_ms"] > 0
