"""``RunJobs``: submit and follow many jobs over one bidirectional stream.

SubmitJob + WatchJob cost two RPCs per job; a client running thousands of small jobs pays more
for gRPC calls than for the jobs. Here each job is one item in a batched request and its
updates are items in batched replies: whatever became ready during one event-loop turn goes out
as one message, without waiting for more. Jobs go through the same submit path as SubmitJob
(validation, defaults, idempotency, dispatch); each job's events come from the store's wake-ups
(``store.wait``), as WatchJob's do, so nothing polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import grpc

from workmesh.services.core.errors import NotFound, WorkmeshError, status_of
from workmesh.services.core.streams import BatchedStream
from workmesh.services.gateway.store import TERMINAL, JobStore
from workmesh.v1 import gateway_pb2

log = logging.getLogger("workmesh.gateway")

Submit = Callable[[gateway_pb2.SubmitJobRequest], Awaitable[gateway_pb2.SubmitJobResponse]]
_EOF = grpc.aio.EOF
_STATUS = "status"


class RunJobsStream(BatchedStream):
    """One RunJobs call: submits the client's jobs and streams their updates.

    Args:
        store: where the jobs' events are read from.
        submit: SubmitJob's path for one request (raises WorkmeshError on bad input).
        context: the servicer context (read by one task, written by the other).
        watch_idle: seconds a job's follower waits for an event before checking the job again.
    """

    def __init__(
        self, store: JobStore, submit: Submit, context: grpc.aio.ServicerContext, *, watch_idle: float = 30.0
    ) -> None:
        super().__init__(context, gateway_pb2.RunJobsReply, "updates")
        self._store = store
        self._submit = submit
        self._watch_idle = watch_idle
        self._followers: set[asyncio.Task] = set()

    def _pending(self) -> bool:
        return bool(self._followers)

    async def _close(self, reader: asyncio.Task) -> None:
        for task in self._followers:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(reader, *self._followers, return_exceptions=True)

    def _error(self, ref: str, job_id: str, exc: BaseException) -> None:
        code, message = status_of(exc)
        self._send(ref=ref, job_id=job_id, error=gateway_pb2.RunJobsError(code=code.value[0], message=message))

    async def _read(self) -> None:
        while True:
            request = await self._next()
            if request is _EOF:
                return
            for item in request.jobs:
                # Each item is submitted and followed by its own task: the items of a batch
                # are created together (one group commit) instead of one commit after another.
                task = self._loop.create_task(self._run_item(item))
                self._followers.add(task)
                task.add_done_callback(self._followed)

    async def _run_item(self, item: gateway_pb2.RunJobsItem) -> None:
        try:
            reply = await self._submit(item.job)
        except WorkmeshError as exc:
            self._error(item.ref, "", exc)
            return
        except Exception as exc:
            log.exception("RunJobs: submitting item %r failed", item.ref)
            self._error(item.ref, "", exc)
            return
        job = reply.job
        self._send(ref=item.ref, job_id=job.job_id, submitted=reply)
        if job.status not in TERMINAL:
            await self._follow(item.ref, job.job_id, job.last_seq)

    def _followed(self, task: asyncio.Task) -> None:
        self._followers.discard(task)
        if not self._followers:
            self._wake_writer()  # the writer may be done

    async def _follow(self, ref: str, job_id: str, after: int) -> None:
        store = self._store
        try:
            while True:
                await store.wait(job_id, after, self._watch_idle)
                events = await store.events(job_id, after)
                if not events:
                    if await store.get(job_id) is None:
                        raise NotFound(f"job_id: job {job_id!r} was deleted")
                    continue
                for event in events:
                    self._send(ref=ref, job_id=job_id, event=event)
                    if event.WhichOneof("payload") == _STATUS and event.status.status in TERMINAL:
                        return
                after = events[-1].seq
        except WorkmeshError as exc:
            self._error(ref, job_id, exc)
        except Exception as exc:
            log.exception("RunJobs: following job %s failed", job_id)
            self._error(ref, job_id, exc)
