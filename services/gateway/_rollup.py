"""A workflow's progress: the parent's progress rolls up its steps' progress (issue 13).

Each step weighs what its handler declared (``ctx.step(..., weight=3)``; label
``workmesh.step_weight`` of the child job) or 1. The parent's fraction is the weighted mean over
its steps so far — by step name: a step that succeeded in any attempt counts 1.0, otherwise its
latest child's fraction — and its message says how many are done. The gateway appends it as a
``progress`` event of the parent whenever a step starts, reports progress or ends, at most once
per ``delay`` per parent (a burst of step events makes one roll-up), so the parent's one
WatchJob shows the workflow's progress. Progress the parent's handler reports itself is shown
too; the latest of the two is the job's progress: the handler's own report drops a roll-up
still waiting for the changes before it, and a step's change after it rolls up again. When the
parent ends with a roll-up still due (it ended right after its last steps), the dispatcher
writes that roll-up with the terminal status (:meth:`Rollup.final`), so a finished workflow's
progress counts every step as it ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math

from workmesh.services.core.errors import FailedPrecondition, NotFound, WorkmeshError
from workmesh.services.gateway.store import JobRecord, JobStore, JobUpdate
from workmesh.v1 import common_pb2

log = logging.getLogger("workmesh.gateway.steps")

WEIGHT_LABEL = "workmesh.step_weight"
MAX_WEIGHT = 1e6


def step_weight(labels: dict[str, str]) -> float:
    """A child job's weight in its parent's progress (1 unless declared)."""
    try:
        weight = float(labels.get(WEIGHT_LABEL, "1"))
    except ValueError:
        return 1.0
    return weight if math.isfinite(weight) and weight > 0 else 1.0


def rolled_up(children: list[JobRecord]) -> common_pb2.Progress | None:
    """The parent's progress from its steps' child jobs (oldest first); None without steps."""
    latest: dict[str, JobRecord] = {}
    done: set[str] = set()
    for child in children:
        if child.status == common_pb2.JOB_STATUS_SUCCEEDED:
            done.add(child.step_name)
        latest[child.step_name] = child
    if not latest:
        return None
    total = sum(step_weight(c.labels) for c in latest.values())
    worked = 0.0
    running: list[str] = []
    for name, child in latest.items():
        if name in done:
            fraction = 1.0
        else:
            fraction = child.progress.fraction if child.progress is not None else 0.0
            if not child.terminal:
                running.append(name)
        worked += step_weight(child.labels) * min(max(fraction, 0.0), 1.0)
    message = f"steps: {len(done)} of {len(latest)} done"
    if running:
        message += f"; running: {', '.join(running[:5])}" + (", …" if len(running) > 5 else "")
    return common_pb2.Progress(fraction=worked / total, message=message)


class Rollup:
    """Rolls steps' progress up into their parents' progress, coalescing bursts.

    Args:
        store: the job store.
        delay: seconds between a step's change and the roll-up it causes (changes meanwhile
            join it).
    """

    def __init__(self, store: JobStore, delay: float = 0.2) -> None:
        self._store = store
        self._delay = delay
        self._pending: dict[str, asyncio.Task[None]] = {}

    def poke(self, parent_id: str) -> None:
        """A step of `parent_id` started, progressed or ended: roll up soon."""
        if parent_id not in self._pending:
            self._pending[parent_id] = asyncio.get_running_loop().create_task(self._later(parent_id))

    def reported(self, job_id: str) -> None:
        """The job's handler reported progress itself: a roll-up of the changes before is dropped."""
        self._drop(job_id)

    def due(self, job_id: str) -> bool:
        """Whether a roll-up waits for the job (a step changed since the last one)."""
        return job_id in self._pending

    async def final(self, parent_id: str) -> common_pb2.Progress | None:
        """The roll-up due for a parent that is ending (written with its terminal status), or
        None when nothing changed. The parent is not checked for being terminal: it is not yet."""
        self._drop(parent_id)
        try:
            parent = await self._store.get(parent_id)
            if parent is None:
                return None
            progress = rolled_up(await self._store.children(parent_id))
        except WorkmeshError as exc:  # the store is down: the terminal write says so too
            log.debug("final progress roll-up of job %s: %s", parent_id, exc)
            return None
        return None if progress is None or progress == parent.progress else progress

    def _drop(self, job_id: str) -> None:
        task = self._pending.pop(job_id, None)
        if task is not None:
            task.cancel()

    async def _later(self, parent_id: str) -> None:
        try:
            await asyncio.sleep(self._delay)
        finally:
            if self._pending.get(parent_id) is asyncio.current_task():
                del self._pending[parent_id]  # changes from now on roll up again
        try:
            await self.roll_up(parent_id)
        except WorkmeshError as exc:  # the store is down: the next change rolls up again
            log.debug("progress roll-up of job %s: %s", parent_id, exc)

    async def roll_up(self, parent_id: str) -> None:
        """Append the parent's rolled-up progress if it changed."""
        parent = await self._store.get(parent_id)
        if parent is None or parent.terminal:
            return
        progress = rolled_up(await self._store.children(parent_id))
        if progress is None or progress == parent.progress:
            return
        with contextlib.suppress(FailedPrecondition, NotFound):  # the parent ended (or went) meanwhile
            await self._store.append(parent_id, [common_pb2.JobEvent(progress=progress)], JobUpdate(progress=progress))

    async def close(self) -> None:
        """Cancel the roll-ups not made yet."""
        pending = list(self._pending.values())
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
