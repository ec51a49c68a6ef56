"""The worker side of a ``Session`` stream: many jobs over one bidirectional gRPC call.

Execute costs one RPC (and a few messages) per job; at thousands of small jobs a second the
per-call cost of grpc.aio dominates. A session carries the same commands and events in batches:
whatever became ready during one event-loop turn goes out as one message, and nothing waits for
more, so a lone event is not delayed. Jobs are followed through :meth:`Job.listen` callbacks,
so a session adds no task per job; the job machinery (idempotent execute, attach replay,
cancel, orphan timeout) is the same one Execute uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import grpc

from workmesh.services.core.errors import WorkmeshError, status_of
from workmesh.services.core.streams import BatchedStream
from workmesh.v1 import worker_pb2

if TYPE_CHECKING:
    from workmesh.workers._job import Job
    from workmesh.workers._worker import Worker

log = logging.getLogger("workmesh.workers")

_EOF = grpc.aio.EOF


class ServerSession(BatchedStream):
    """One Session call: applies the client's commands, streams the events of its jobs.

    Args:
        worker: the worker whose jobs the commands address.
        context: the servicer context of the call (read and written concurrently).
    """

    def __init__(self, worker: Worker, context: grpc.aio.ServicerContext) -> None:
        super().__init__(context, worker_pb2.SessionReply, "events")
        self._worker = worker
        self._jobs: dict[str, Job] = {}  # jobs this stream follows, by id

    def _pending(self) -> bool:
        return bool(self._jobs)

    async def _close(self, reader: asyncio.Task) -> None:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
        for job in self._jobs.values():
            job.unlisten(self._on_event)  # the jobs keep running; orphan timeouts start
        self._jobs.clear()

    def _on_event(self, job: Job, event: worker_pb2.WorkerEvent) -> None:
        self._send(job_id=job.job_id, event=event)
        if event.WhichOneof("payload") in ("result", "error") and self._jobs.get(job.job_id) is job:
            del self._jobs[job.job_id]  # Job.listen drops the listener itself after this event

    def _refuse(self, job_id: str, exc: BaseException) -> None:
        code, message = status_of(exc)
        self._send(job_id=job_id, error=worker_pb2.SessionError(code=code.value[0], message=message))

    async def _read(self) -> None:
        while True:
            request = await self._next()
            if request is _EOF:
                return
            for command in request.commands:
                kind = command.WhichOneof("command")
                try:
                    if kind == "execute":
                        job, after = self._worker.execute(command.execute)
                        self._follow(job, after)
                    elif kind == "attach":
                        job = self._worker.attach(command.attach.job_id, command.attach.after_seq)
                        self._follow(job, command.attach.after_seq)
                    elif kind == "cancel":
                        self._worker.cancel(command.cancel.job_id, command.cancel.reason or "cancelled")
                    elif kind == "detach":
                        followed = self._jobs.pop(command.detach, None)
                        if followed is not None:
                            followed.unlisten(self._on_event)
                except Exception as exc:
                    job_id = command.execute.job_id if kind == "execute" else command.attach.job_id
                    if not isinstance(exc, WorkmeshError):
                        log.exception("session command %s for job %s failed", kind, job_id)
                    self._refuse(job_id, exc)

    def _follow(self, job: Job, after_seq: int) -> None:
        earlier = self._jobs.pop(job.job_id, None)
        if earlier is not None:
            earlier.unlisten(self._on_event)  # a re-execute or re-attach replaces the old follow
        self._jobs[job.job_id] = job
        job.listen(self._on_event, after_seq)
