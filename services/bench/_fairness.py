"""``workmesh bench fairness``: FIFO against fair share on one contended ``sleep`` type.

Each scenario runs on a fresh mesh of real processes (registry, gateway on an in-memory store,
one ``sleep`` worker of capacity 4) once per policy, in the same run:

- **issue**: user A submits 200 jobs of L seconds; 2·L later user B submits 10 jobs of L and
  user C one job of 5·L. Figures: B's first-start delay, C's wait, the share of worker-seconds
  each user got while B or C had work (the contended window), makespan and throughput.
- **backlog** (weights 1:1, then 2:1 from a shares file): A and B each submit 60 jobs of L at
  once, so both stay backlogged; each user's share of worker-seconds while both had queued
  jobs, against its weight.

L defaults to 0.2 s (the issue's 1 s scaled down 5×, so a run costs about a minute); all
times come from the gateway's job records (created, started, finished).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc

from workmesh.services.core.limits import TERMINAL
from workmesh.services.devmesh import DevMesh
from workmesh.services.gateway.dispatch._fairshare import Owner, QueuedJob, Scheduler
from workmesh.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc

BASIC = "workmesh.workers.examples.basic:worker"
CAPACITY = 4


def _s(ts) -> float:
    return ts.seconds + ts.nanos / 1e9


async def _submit(stub, user: str, n: int, seconds: float) -> list[str]:
    request = gateway_pb2.SubmitJobRequest(
        workflow_type="sleep",
        tenant="bench",
        user=user,
        params={"seconds": common_pb2.ParamValue(float_value=seconds), "steps": common_pb2.ParamValue(int_value=1)},
    )
    replies = await asyncio.gather(*(stub.SubmitJob(request, timeout=60) for _ in range(n)))
    return [r.job.job_id for r in replies]


async def _finished(stub, ids: list[str], timeout: float) -> list[gateway_pb2.Job]:
    deadline = time.monotonic() + timeout
    pending = set(ids)
    jobs: dict[str, gateway_pb2.Job] = {}
    while pending:
        for job_id in list(pending):
            job = await stub.GetJob(gateway_pb2.GetJobRequest(job_id=job_id), timeout=30)
            if job.status in TERMINAL:
                jobs[job_id] = job
                pending.discard(job_id)
        if pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} jobs did not finish within {timeout:.0f}s")
            await asyncio.sleep(0.25)
    failed = [j.job_id for j in jobs.values() if j.status != common_pb2.JOB_STATUS_SUCCEEDED]
    if failed:
        raise RuntimeError(f"{len(failed)} benchmark jobs did not succeed, e.g. {failed[0]}")
    return [jobs[i] for i in ids]


def _work(jobs, t0: float, t1: float) -> float:
    return sum(max(0.0, min(_s(j.finished_at), t1) - max(_s(j.started_at), t0)) for j in jobs)


def _shares(by_user: dict[str, list], t0: float, t1: float) -> dict[str, float]:
    work = {u: _work(jobs, t0, t1) for u, jobs in by_user.items()}
    total = sum(work.values()) or 1.0
    return {u: w / total for u, w in work.items()}


async def _issue(address: str, length: float) -> dict:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        a = await _submit(stub, "A", 200, length)
        await asyncio.sleep(2 * length)
        b, c = await asyncio.gather(_submit(stub, "B", 10, length), _submit(stub, "C", 1, 5 * length))
        jobs = {u: await _finished(stub, ids, 600) for u, ids in (("A", a), ("B", b), ("C", c))}
    every = [j for js in jobs.values() for j in js]
    first_created = min(_s(j.created_at) for j in every)
    b_created = min(_s(j.created_at) for j in jobs["B"])
    window_end = max(_s(j.finished_at) for j in jobs["B"] + jobs["C"])
    makespan = max(_s(j.finished_at) for j in every) - first_created
    shares = _shares(jobs, b_created, window_end)
    b_first = min(_s(j.started_at) for j in jobs["B"])
    # Without preemption B waits for a slot to free: how long after the first one did it start?
    first_free = min((_s(j.finished_at) for j in every if _s(j.finished_at) > b_created), default=b_created)
    return {
        "b_first_start_delay_s": b_first - b_created,
        "b_first_start_after_first_free_slot_s": b_first - first_free,
        "c_wait_s": _s(jobs["C"][0].started_at) - _s(jobs["C"][0].created_at),
        "b_last_finish_after_submit_s": max(_s(j.finished_at) for j in jobs["B"]) - b_created,
        **{f"share_{u}_contended": round(v, 3) for u, v in shares.items()},
        "contended_window_s": window_end - b_created,
        "makespan_s": makespan,
        "throughput_jobs_per_s": len(every) / makespan,
        "worker_utilisation": _work(every, first_created, first_created + makespan) / (CAPACITY * makespan),
    }


async def _backlog(address: str, length: float, n: int = 60) -> dict:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        a, b = await asyncio.gather(_submit(stub, "A", n, length), _submit(stub, "B", n, length))
        jobs = {"A": await _finished(stub, a, 600), "B": await _finished(stub, b, 600)}
    every = jobs["A"] + jobs["B"]
    t0 = min(_s(j.started_at) for j in every)
    # Both backlogged until the first of them has started its last job.
    t1 = min(max(_s(j.started_at) for j in js) for js in jobs.values())
    shares = _shares(jobs, t0, t1)
    return {**{f"share_{u}": round(v, 3) for u, v in shares.items()}, "window_s": t1 - t0}


@contextlib.contextmanager
def _mesh(tmp: Path, policy: str, shares_file: str = "") -> Iterator[DevMesh]:
    env = {"WORKMESH_SCHEDULER": policy}
    if shares_file:
        env["WORKMESH_SHARES_FILE"] = shares_file
    with DevMesh(workers=(), results=False, database_url="memory://", data_dir=tmp, log_dir=tmp, env=env) as mesh:
        mesh.add_worker(BASIC, "--capacity", str(CAPACITY))
        mesh.wait_for_types()
        yield mesh


def bench_fairness(length: float = 0.2) -> dict:
    """Run both scenarios under FIFO and fair share; return the figures (see the module doc)."""
    figures: dict = {"job_seconds": length, "capacity": CAPACITY}
    with tempfile.TemporaryDirectory(prefix="workmesh-bench-fair-") as tmp:
        shares = Path(tmp) / "shares-2-1.toml"
        shares.write_text("[tenants.bench.users.A]\nweight = 2\n[tenants.bench.users.B]\nweight = 1\n")
        for policy in ("fifo", "fair"):
            with _mesh(Path(tmp), policy) as mesh:
                for key, value in asyncio.run(_issue(mesh.gateway_address, length)).items():
                    figures[f"issue_{policy}_{key}"] = round(value, 3) if isinstance(value, float) else value
        for label, shares_file in (("1to1", ""), ("2to1", str(shares))):
            with _mesh(Path(tmp), "fair", shares_file) as mesh:
                for key, value in asyncio.run(_backlog(mesh.gateway_address, length)).items():
                    figures[f"backlog_{label}_{key}"] = round(value, 3)
    fifo, fair = figures["issue_fifo_throughput_jobs_per_s"], figures["issue_fair_throughput_jobs_per_s"]
    figures["fair_throughput_vs_fifo"] = round(fair / fifo, 3)
    figures["target_b_first_start_within_one_job"] = figures["issue_fair_b_first_start_delay_s"] <= length
    figures["target_shares_within_10pct_1to1"] = abs(figures["backlog_1to1_share_A"] - 0.5) <= 0.05
    figures["target_shares_within_10pct_2to1"] = abs(figures["backlog_2to1_share_A"] - 2 / 3) <= 2 / 3 * 0.1
    figures["target_throughput_within_5pct"] = fair / fifo >= 0.95
    return figures


def scheduler_cost(jobs: int = 2000, in_flight: int = 64, owners: tuple[int, ...] = (1, 10, 100)) -> dict:
    """In process: microseconds per scheduling decision (choose, start, finish), FIFO and fair,
    for a burst of `jobs` spread over each number of owners, `in_flight` running at a time."""
    # The machine's speed right now (shared, loaded cores): a plain Python loop, to compare runs.
    start = time.perf_counter()
    total = 0
    for i in range(200_000):
        total += i
    figures: dict = {"python_loop_ns_per_iteration": round((time.perf_counter() - start) / 200_000 * 1e9, 1)}
    for n in owners:
        for policy in ("fifo", "fair"):
            s = Scheduler(policy=policy)
            for i in range(jobs):
                s.add(QueuedJob(f"j{i}", "echo", Owner("t", f"u{i % n}"), 0, float(i)))
            running: list[str] = []
            now = 0.0
            start = time.perf_counter()
            while (job := s.next_job("echo", now)) is not None:
                s.start(job.job_id, now)
                running.append(job.job_id)
                if len(running) >= in_flight:
                    s.finish(running.pop(0), now)
                now += 0.001
            figures[f"scheduler_{policy}_{n}_owners_us_per_job"] = round((time.perf_counter() - start) / jobs * 1e6, 1)
    return figures
