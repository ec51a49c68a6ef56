"""A simulation of the queue on simulated time: when would each queued job start and end?

Runs the dispatcher's own :class:`~workmesh.services.gateway.dispatch._fairshare.Scheduler` (a clone) over
the current queued and running jobs with their estimated runtimes and the types' capacity: each
free slot is given to ``next_job`` exactly as the dispatcher would, and usage accrues as the
simulated jobs run. ``EstimateJob`` adds the caller's would-be job to the clone first, so its
expected start reflects the caller's fair-share position, not only the queue length.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from workmesh.services.gateway.dispatch._fairshare import QueuedJob, RunningJob, Scheduler

__all__ = ["Simulated", "simulate"]

MAX_STEPS = 20_000  # bounds the cost of one simulation; jobs past it get no expected start


@dataclass(frozen=True)
class Simulated:
    """Expected start and end (seconds on the scheduler's clock) of one job."""

    start: float
    end: float


def simulate(
    scheduler: Scheduler,
    capacity: Mapping[str, int],
    now: float,
    *,
    runtime: Callable[[QueuedJob], float],
    remaining: Callable[[RunningJob], float],
    stop_at: str | None = None,
    max_steps: int = MAX_STEPS,
) -> dict[str, Simulated]:
    """Simulate dispatch from `now` until the queue is empty (or `stop_at` has started).

    Args:
        scheduler: the live scheduler; it is cloned, never changed.
        capacity: slots per workflow type (all instances'); a type without any never starts.
        runtime: estimated seconds a queued job runs.
        remaining: estimated seconds a running job still runs (0 or more).
        stop_at: a job id whose start is all the caller needs.
        max_steps: how many job starts to simulate at most.

    Returns:
        job id -> :class:`Simulated` for every queued job that starts (and each running one).
    """
    sim = scheduler.clone()
    out: dict[str, Simulated] = {}
    ends: list[tuple[float, str]] = []
    busy: dict[str, int] = {}
    for run in sim.running_jobs():
        end = now + max(remaining(run), 0.0)
        out[run.job_id] = Simulated(run.started_at, end)
        heapq.heappush(ends, (end, run.job_id))
        busy[run.workflow_type] = busy.get(run.workflow_type, 0) + 1
    t = now
    steps = 0
    while steps < max_steps:
        for wf_type in sim.types():
            while busy.get(wf_type, 0) < capacity.get(wf_type, 0):
                job = sim.next_job(wf_type, t)
                if job is None:
                    break
                sim.start(job.job_id, t)
                end = t + max(runtime(job), 0.0)
                out[job.job_id] = Simulated(t, end)
                heapq.heappush(ends, (end, job.job_id))
                busy[wf_type] = busy.get(wf_type, 0) + 1
                steps += 1
                if job.job_id == stop_at:
                    return out
        if not ends or not sim.types():
            return out
        t, job_id = heapq.heappop(ends)
        ended = sim.finish(job_id, t)
        if ended is not None:
            busy[ended.workflow_type] -= 1
    return out
