"""The gateway's self-check: every lease it holds belongs to a job it drives, and every capacity
slot it counts on a worker instance belongs to a live attempt.

Served by ``GatewayAdmin.CheckInvariants``; the fuzz and chaos tests assert it. The check reads
the dispatcher's state at one instant (no await in between) and the leases from the store; a
job can be claimed (its lease committed) a moment before the dispatcher hears of it, so a lease
on a job not driven counts only when it is still so after the next lease round.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from workmesh.services.gateway.dispatch._state import Driven
from workmesh.v1 import admin_pb2


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What a dispatcher drives and counts, at one instant."""

    driven: frozenset[str]  # queued, backing off, running, re-attaching
    running: int  # attempts followed right now
    slots: tuple[tuple[str, int, int, int], ...]  # (instance, capacity, in_flight, live attempts)
    stuck: tuple[str, ...] = ()  # owned, but neither queued, backing off nor running


def snapshot(driven: Driven, catalog: Any, owned: Iterable[str]) -> Snapshot:
    """The dispatcher's state now: the jobs it `owned`, its attempts and the catalog's slots."""
    live: collections.Counter[str] = collections.Counter()
    for a in driven.running.values():
        if a.inst is not None and a.task is not None and not a.task.done():
            live[a.inst.key] += 1
    slots = tuple((i.name, i.capacity, i.in_flight, live[i.key]) for i in catalog.instances())
    queued = driven.queue.ids()
    stuck = [job_id for job_id, job in driven.pending.items() if job_id not in queued and job.timer is None]
    return Snapshot(driven=frozenset(owned), running=len(driven.running), slots=slots, stuck=tuple(sorted(stuck)))


async def check_invariants(
    replica_id: str, snapshot: Callable[[], Snapshot], leased: Callable[[], Awaitable[set[str]]] | None, settle: float
) -> admin_pb2.CheckInvariantsResponse:
    """Check the invariants now; `settle` seconds is how long a lease round may take.

    Args:
        replica_id: this gateway's lease owner name.
        snapshot: the dispatcher's state (taken synchronously).
        leased: the ids of non-terminal jobs whose unexpired lease this replica holds; None when
            the store cannot tell (the lease check is skipped and ``leases_held`` is -1).
        settle: seconds to wait before looking again at leases on jobs not driven.
    """
    before = snapshot()
    violations = [
        f"instance {name}: {in_flight} slot(s) counted, {live} live attempt(s)"
        for name, _, in_flight, live in before.slots
        if in_flight != live
    ]
    held: set[str] = set()
    stray: set[str] = set()
    if leased is not None:
        held = await leased()
        stray = held - before.driven - snapshot().driven
    stuck = set(before.stuck)
    if stray or stuck:  # may be a claim or a loss being handled right now: look again later
        await asyncio.sleep(settle)
        after = snapshot()
        stuck &= set(after.stuck)
        if stray and leased is not None:
            held = await leased()
            stray = (stray & held) - after.driven
    violations.extend(f"job {job_id}: driven but neither queued, backing off nor running" for job_id in sorted(stuck))
    violations.extend(f"job {job_id}: leased to {replica_id} but not driven" for job_id in sorted(stray))
    return admin_pb2.CheckInvariantsResponse(
        replica_id=replica_id,
        violations=violations,
        driven_jobs=len(before.driven),
        leases_held=len(held) if leased is not None else -1,
        running_attempts=before.running,
        instances=[
            admin_pb2.InstanceSlots(instance=name, capacity=capacity, in_flight=in_flight, live_attempts=live)
            for name, capacity, in_flight, live in before.slots
        ],
    )
