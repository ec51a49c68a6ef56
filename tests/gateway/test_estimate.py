"""The runtime model: fitted against numeric params, falling back to history, then unknown."""

from __future__ import annotations

import numpy as np
import pytest

from workmesh.services.gateway.dispatch._estimate import MIN_FIT_RUNS, RuntimeModel


def power_law_runs(n: int, seed: int = 1) -> list[tuple[dict[str, float], float]]:
    rng = np.random.default_rng(seed)
    runs = []
    for buildings in rng.integers(10, 5000, n):
        runtime = 0.05 + 0.002 * buildings**0.9 * rng.lognormal(0.0, 0.1)
        runs.append(({"buildings": float(buildings), "year": 2025.0}, float(runtime)))
    return runs


def test_fits_runtime_against_params_and_predicts_held_out_runs():
    model = RuntimeModel()
    runs = power_law_runs(40)
    for params, runtime in runs[:30]:
        model.add("heat", "1.0", params, runtime)
    errors, under_p90 = [], 0
    for params, runtime in runs[30:]:
        est = model.estimate("heat", "1.0", params)
        assert est.basis == "params" and est.runs == 30
        errors.append(abs(est.p50_s - runtime) / runtime)
        under_p90 += runtime <= est.p90_s
        assert est.p90_s >= est.p50_s
    assert np.median(errors) <= 0.25
    assert under_p90 >= 8


def test_extrapolates_past_the_largest_run():
    model = RuntimeModel()
    for b in (10, 20, 50, 100, 200, 300, 500, 800, 1000, 1200):
        model.add("heat", "1.0", {"buildings": b}, 0.01 * b)
    est = model.estimate("heat", "1.0", {"buildings": 10_000})
    assert est.p50_s == pytest.approx(100.0, rel=0.05)


def test_few_runs_fall_back_to_their_runtimes_then_to_other_versions_then_unknown():
    model = RuntimeModel()
    assert not model.estimate("heat", "1.0", {"buildings": 5}).known
    assert "no finished run" in model.estimate("heat", "1.0", {}).reason
    for i in range(MIN_FIT_RUNS - 1):
        model.add("heat", "1.0", {"buildings": 10 * (i + 1)}, 2.0)
    est = model.estimate("heat", "1.0", {"buildings": 5})
    assert (est.basis, est.p50_s, est.runs) == ("history", 2.0, MIN_FIT_RUNS - 1)
    est = model.estimate("heat", "2.0", {"buildings": 5})
    assert est.basis == "history" and "other versions" in est.reason and est.p50_s == 2.0
    assert model.typical("heat").p50_s == 2.0 and not model.typical("other").known


def test_params_without_numbers_use_the_history():
    model = RuntimeModel()
    for i in range(20):
        model.add("echo", "1", {}, 1.0 + i % 2)
    est = model.estimate("echo", "1", {})
    assert est.basis == "history" and est.runs == 20


def test_a_new_run_is_taken_into_account():
    model = RuntimeModel()
    for b in range(1, 21):
        model.add("heat", "1.0", {"buildings": b}, 1.0 * b)
    before = model.estimate("heat", "1.0", {"buildings": 10}).p50_s
    for b in range(1, 21):
        model.add("heat", "1.0", {"buildings": b}, 3.0 * b)
    assert model.estimate("heat", "1.0", {"buildings": 10}).p50_s > 1.5 * before


def test_nonpositive_and_invalid_runtimes_are_ignored():
    model = RuntimeModel()
    model.add("heat", "1.0", {}, 0.0)
    model.add("heat", "1.0", {}, float("nan"))
    assert model.runs("heat") == 0
