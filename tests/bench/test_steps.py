"""``bench steps`` runs on a real mesh (processes) and reports its figures (no timing asserts)."""

from __future__ import annotations

import pytest

from workmesh.services.bench._steps import bench_steps

pytestmark = pytest.mark.e2e


def test_bench_steps_reports_both_modes_and_reuses_every_step(tmp_path):
    figures = bench_steps(f"sqlite:///{tmp_path / 'jobs.db'}", tmp_path, runs=2, steps=5)
    for mode in ("sequential", "parallel"):
        runs = figures[mode]["runs"]
        assert len(runs) == 2  # each run also checked that no step ran again on retry
        for key in ("per_step_ms", "reexecute_s", "retry_to_end_s"):
            spread = figures[mode][key]
            assert 0 < spread["min"] <= spread["median"] <= spread["max"]
