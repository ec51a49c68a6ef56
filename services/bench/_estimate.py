"""``workmesh bench estimate``: how well EstimateJob predicts heat-demand runtimes, and its cost.

1. Accuracy: a mesh of real processes (registry, gateway on an in-memory store, one heat-demand
   worker) runs `runs` heat-demand jobs one at a time (no queueing in the runtimes) with
   ``buildings`` drawn uniformly from 10…5,000 (seeded) and ``write_series=false`` (no results
   service). The gateway learns from the first three quarters; for each of the others
   EstimateJob is asked for all of them first, then they run. Figures: median absolute
   percentage error of p50 against the job's runtime (the time it held its slot, DISPATCHED →
   terminal, which is what the model learns), and how many fell at or below p90.
2. Cost: a gateway whose SQLite store holds `history` finished heat-demand runs (loaded at
   start) answers EstimateJob; p50/p90 of the RPC's round trip over 300 calls.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np

from workmesh.services.devmesh import DevMesh
from workmesh.services.gateway.store.sql._store import SqlJobStore
from workmesh.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc
from workmesh.workers import load_worker

HEAT = "workmesh.workers.examples.heat_demand:worker"


def _params(buildings: int) -> dict[str, common_pb2.ParamValue]:
    return {
        "buildings": common_pb2.ParamValue(int_value=int(buildings)),
        "write_series": common_pb2.ParamValue(bool_value=False),
    }


def _run(stub, buildings: int) -> float:
    """Run one job; the seconds it held its slot (DISPATCHED → terminal), what the model learns."""
    job = stub.SubmitJob(
        gateway_pb2.SubmitJobRequest(workflow_type="heat-demand", params=_params(buildings)), timeout=60
    ).job
    dispatched: int | None = None
    ended: int | None = None
    for event in stub.WatchJob(gateway_pb2.WatchJobRequest(job_id=job.job_id), timeout=600):
        if event.HasField("error"):
            raise RuntimeError(f"heat-demand job {job.job_id} failed: {event.error.message}")
        if event.HasField("status"):
            if event.status.status == common_pb2.JOB_STATUS_DISPATCHED:
                dispatched = event.time.ToNanoseconds()
            ended = event.time.ToNanoseconds()
    if dispatched is None or ended is None:
        raise RuntimeError(f"heat-demand job {job.job_id} ended without being dispatched")
    return (ended - dispatched) / 1e9


def _accuracy(tmp: Path, runs: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    sizes = [int(b) for b in rng.integers(10, 5001, runs)]
    fit = runs * 3 // 4
    with (
        DevMesh(workers=(HEAT,), results=False, database_url="memory://", data_dir=tmp, log_dir=tmp) as mesh,
        grpc.insecure_channel(mesh.gateway_address) as channel,
    ):
        stub = gateway_pb2_grpc.GatewayStub(channel)
        for buildings in sizes[:fit]:
            _run(stub, buildings)
        # Every estimate first, from the fitted runs only; then the held-out jobs run.
        estimates = []
        for buildings in sizes[fit:]:
            est = stub.EstimateJob(
                gateway_pb2.EstimateJobRequest(workflow_type="heat-demand", params=_params(buildings)), timeout=30
            )
            if est.basis != "params":
                raise RuntimeError(f"EstimateJob did not fit the params: {est.basis} ({est.reason})")
            estimates.append((est.runtime_p50.ToNanoseconds() / 1e9, est.runtime_p90.ToNanoseconds() / 1e9))
        errors, under, rows = [], 0, []
        for buildings, (p50, p90) in zip(sizes[fit:], estimates, strict=True):
            actual = _run(stub, buildings)
            errors.append(abs(p50 - actual) / actual)
            under += actual <= p90
            rows.append(f"{buildings}:{actual:.2f}s/p50 {p50:.2f}/p90 {p90:.2f}")
    return {
        "fit_runs": fit,
        "predicted_runs": runs - fit,
        "runs_on": est.runs,
        "p50_median_abs_pct_error": round(100 * statistics.median(errors), 1),
        "at_or_below_p90": under,
        "predictions": "; ".join(rows),
    }


async def _fill(url: str, history: int, version: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    async with SqlJobStore(url) as store:
        now = time.time()
        rows = []
        for i, b in enumerate(rng.integers(10, 5001, history)):
            runtime = 0.05 + 0.0004 * float(b) * float(rng.lognormal(0.0, 0.1))
            rows.append(("heat-demand", version, {"buildings": float(b), "seed": 42.0}, runtime, now + i))
        await store.add_runtimes(rows)


def _cost(tmp: Path, history: int, seed: int, calls: int = 300) -> dict:
    version = load_worker(HEAT).definitions["heat-demand"].version
    url = f"sqlite:///{tmp / 'estimate-history.db'}"
    asyncio.run(_fill(url, history, version, seed))
    with (
        DevMesh(workers=(HEAT,), results=False, database_url=url, data_dir=tmp, log_dir=tmp) as mesh,
        grpc.insecure_channel(mesh.gateway_address) as channel,
    ):
        stub = gateway_pb2_grpc.GatewayStub(channel)
        request = gateway_pb2.EstimateJobRequest(workflow_type="heat-demand", params=_params(1000))
        first = stub.EstimateJob(request, timeout=30)
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            stub.EstimateJob(request, timeout=30)
            times.append((time.perf_counter() - start) * 1000)
        listed = stub.ListWorkflowTypes(gateway_pb2.ListWorkflowTypesRequest(), timeout=10)
    times.sort()
    runs = next(t.runtime_runs for t in listed.types if t.type.name == "heat-demand")
    return {
        "history_runs": runs,
        "estimate_runs_on": first.runs,
        "estimate_p50_ms": round(times[len(times) // 2], 3),
        "estimate_p90_ms": round(times[int(len(times) * 0.9)], 3),
    }


def bench_estimate(runs: int = 40, history: int = 10_000, seed: int = 7) -> dict:
    """Accuracy over `runs` heat-demand jobs and EstimateJob's latency over `history` runs."""
    if runs < 8:
        raise ValueError("bench estimate: --runs must be at least 8")
    with tempfile.TemporaryDirectory(prefix="workmesh-bench-est-") as tmp:
        figures = _accuracy(Path(tmp), runs, seed)
        figures.update(_cost(Path(tmp), history, seed))
    figures["target_error_le_25pct"] = figures["p50_median_abs_pct_error"] <= 25
    figures["target_8_of_10_under_p90"] = figures["at_or_below_p90"] >= 0.8 * figures["predicted_runs"]
    figures["target_p50_le_5ms"] = figures["estimate_p50_ms"] <= 5
    return figures
