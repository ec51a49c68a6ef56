"""Row leases of one gateway replica: which non-terminal jobs this replica drives.

Every non-terminal job is driven by exactly one replica: the one holding its lease in the job
store. A new job is created leased to the replica that accepted it. :class:`LeaseKeeper` renews
the leases of the jobs this replica drives every ``renew_interval`` seconds (well inside
``lease_seconds``), and claims jobs whose lease is free or expired — those of a replica that
died, or of this replica's previous life. Jobs it no longer holds (another replica claimed them
after this one stalled past the expiry, or they finished or were deleted elsewhere) are handed
back to the dispatcher to let go.

A replica id is stable across a restart of the same gateway (same host and port by default),
so a restarted gateway first releases the leases its previous process held and claims them at
once instead of waiting for their expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable

from workmesh.services.core.errors import WorkmeshError
from workmesh.services.gateway.store import JobRecord, JobStore
from workmesh.v1 import common_pb2

log = logging.getLogger("workmesh.gateway.leases")

ACTIVE = (common_pb2.JOB_STATUS_QUEUED, common_pb2.JOB_STATUS_DISPATCHED, common_pb2.JOB_STATUS_RUNNING)
CLAIM_BATCH = 500


class LeaseKeeper:
    """Renews, claims and releases the job leases of one replica.

    Args:
        store: the shared job store.
        owner: this replica's id.
        lease_seconds: how long a lease lasts without renewal.
        renew_interval: seconds between two rounds of renewing and claiming.
        owned: the ids of the jobs this replica drives right now.
        on_claimed: called with each job newly claimed (queued, or running on a worker).
        on_lost: called with the ids this replica drove but no longer holds.
        settling: the ids of jobs driven here whose create has not committed yet (their lease
            comes with it: a renew that ran first found no row, which does not make them lost).
    """

    def __init__(
        self,
        store: JobStore,
        owner: str,
        *,
        lease_seconds: float,
        renew_interval: float,
        owned: Callable[[], Iterable[str]],
        on_claimed: Callable[[JobRecord], None],
        on_lost: Callable[[set[str]], None],
        on_renewed: Callable[[], None] | None = None,
        settling: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        self._store = store
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._interval = renew_interval
        self._owned = owned
        self._on_claimed = on_claimed
        self._on_lost = on_lost
        self._on_renewed = on_renewed
        self._settling = settling
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        # Monotonic time each held lease was last granted (created, claimed, renewed), taken
        # *before* the store call: the lease lasts at least lease_seconds from then.
        self._granted: dict[str, float] = {}

    async def start(self) -> None:
        """Release what a previous process of this replica held, then keep leases in a task."""
        with contextlib.suppress(WorkmeshError):
            await self._release_previous()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="gateway-leases")

    async def stop(self, release: bool = True) -> None:
        """Stop renewing; with `release`, give up the leases held so others take over at once."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if release:
            try:
                await self._store.release(self.owner, list(self._owned()))
            except WorkmeshError as exc:  # the leases expire by themselves
                log.warning("could not release leases: %s", exc)

    def poke(self) -> None:
        """Run a round now (e.g. after giving a job up, so it is claimed again without delay)."""
        self._wake.set()

    # -- this replica's own view of its leases (the fence of at-most-once) ------------------
    def granted(self, job_id: str, at: float) -> None:
        """The job's lease was granted at monotonic time `at` (e.g. by creating the job)."""
        if at > self._granted.get(job_id, float("-inf")):
            self._granted[job_id] = at

    def remaining(self, job_id: str) -> float:
        """Seconds the lease surely lasts still, by this process's clock (≤ 0: may have expired).

        Another replica can claim a job only once its lease expired; while this is positive
        (less a margin for the clocks), no one else drives the job. A replica that stalled —
        CPU starved, paused, stuck on a slow disk — sees it shrink even though it renewed
        nothing meanwhile.
        """
        granted = self._granted.get(job_id)
        if granted is None:
            return 0.0
        return self.lease_seconds - (time.monotonic() - granted)

    async def renew_now(self, job_id: str) -> bool:
        """Renew one lease at once (a dispatch that took long to record); whether it is held."""
        asked = time.monotonic()
        held = await self._store.renew(self.owner, [job_id], self.lease_seconds)
        if job_id in held:
            self.granted(job_id, asked)
            return True
        return False

    def fresh(self, job_id: str) -> bool:
        """Whether the job may be dispatched now: its lease lasts at least a quarter of its
        lifetime still, time enough to record the dispatch and reach the worker."""
        return self.remaining(job_id) >= self.lease_seconds / 4

    async def _release_previous(self) -> None:
        held = set(self._owned())
        stale: list[str] = []
        after = None
        while True:
            page = await self._store.list_jobs(statuses=ACTIVE, limit=1000, after=after)
            stale.extend(r.job_id for r in page if r.job_id not in held)
            if len(page) < 1000:
                break
            after = page[-1].job_id
        if stale:
            # Only leases held by this owner are touched; others' stay as they are.
            await self._store.release(self.owner, stale)

    async def _run(self) -> None:
        while True:
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except WorkmeshError as exc:  # store unavailable for now: keep state, try again
                log.warning("lease round failed: %s", exc)
            except Exception:  # a bug must not end lease keeping
                log.exception("lease round failed")
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)

    async def round(self) -> None:
        """Renew the leases of the jobs driven here, report lost ones, claim free ones."""
        owned = set(self._owned())
        if owned:
            asked = time.monotonic()
            settling = set(self._settling())
            held = await self._store.renew(self.owner, list(owned), self.lease_seconds)
            for job_id in held:
                self.granted(job_id, asked)
            # A job that started being driven during the renew call was not part of it.
            lost = {job_id for job_id in owned - held - settling if job_id in set(self._owned())}
            for job_id in lost:
                self._granted.pop(job_id, None)
            if lost:
                self._on_lost(lost)
        driven = set(self._owned())
        for job_id in [j for j in self._granted if j not in driven]:
            del self._granted[job_id]
        while True:
            asked = time.monotonic()
            claimed = await self._store.claim(self.owner, CLAIM_BATCH, self.lease_seconds)
            for record in claimed:
                self.granted(record.job_id, asked)
                self._on_claimed(record)
            if len(claimed) < CLAIM_BATCH:
                break
        if self._on_renewed is not None:
            self._on_renewed()
