"""What the dispatcher shares with its collaborators (outcomes, control, recovery): the jobs it
drives and the side tasks it must wait for when it stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from workmesh.services.gateway.dispatch._attempt import Attempt, Pending
from workmesh.services.gateway.dispatch._jobqueue import JobQueue

log = logging.getLogger("workmesh.gateway.dispatch")


class Driven:
    """The jobs a dispatcher drives, each in one place: ``pending`` (queued in ``queue``, or
    backing off before its next attempt) or ``running`` (an attempt being followed); and
    whether the dispatcher runs at all (``started``).

    Args:
        queue: the queues the scheduler picks the next job from.
    """

    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue
        self.pending: dict[str, Pending] = {}
        self.running: dict[str, Attempt] = {}
        self.started = False

    def drop(self, job_id: str) -> Pending | None:
        """Stop driving a job that waits (cancelled, deleted, or no longer ours): out of its
        queue, its backoff timer off. Returns it, or None when it was not waiting here."""
        job = self.pending.pop(job_id, None)
        if job is not None:
            job.cancelled = True
            self.queue.discard(job_id)
            if job.timer is not None:
                job.timer.cancel()
        return job


class SideTasks:
    """Tasks started on the side (cancel calls, attempt records, take-overs): a failure is
    logged, and the dispatcher waits for the lot when it stops."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run `coro` as a side task."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def pending(self) -> list[asyncio.Task[Any]]:
        """The side tasks not finished yet."""
        return list(self._tasks)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("gateway side task failed", exc_info=task.exception())
