"""The gateway side of a worker ``Session``: one bidirectional stream carrying all our jobs on an instance.

An ``Execute`` call per job costs a whole RPC on both sides; a session sends the same commands
and events in batches (whatever became ready in one event-loop turn, never waiting for more).
Each job gets a :class:`SessionCall` with the surface the dispatcher uses on an Execute call —
``await call.read()`` returns the next ``WorkerEvent`` or ``grpc.aio.EOF`` after the terminal
one, ``call.cancel()`` stops following the job — and a broken session fails every call it
carried with the ``AioRpcError(UNAVAILABLE)`` a broken Execute stream raises, so the dispatcher
maps it to "instance lost" exactly as before.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import Any

import grpc

from workmesh.services.core.streams import Outbox
from workmesh.v1 import worker_pb2, worker_pb2_grpc

log = logging.getLogger("workmesh.gateway.session")

_EOF = grpc.aio.EOF
_TERMINAL = frozenset({"result", "error"})


def _rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


def _status_code(number: int) -> grpc.StatusCode:
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code
    return grpc.StatusCode.UNKNOWN


class SessionCall:
    """The events of one job on a session, read like a server-streaming call."""

    __slots__ = ("_cancelled", "_done", "_error", "_events", "_session", "_waiter", "job_id")

    def __init__(self, session: WorkerSession, job_id: str) -> None:
        self._session = session
        self.job_id = job_id
        self._events: collections.deque[worker_pb2.WorkerEvent] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: grpc.aio.AioRpcError | None = None
        self._done = False  # the terminal event was read: EOF from now on
        self._cancelled = False

    async def read(self) -> worker_pb2.WorkerEvent | object:
        """The next event; ``grpc.aio.EOF`` after the terminal one.

        Raises:
            grpc.aio.AioRpcError: the worker refused the job, or the session broke.
            asyncio.CancelledError: the call was cancelled.
        """
        while True:
            if self._events:
                event = self._events.popleft()
                if event.WhichOneof("payload") in _TERMINAL:
                    self._done = True
                return event
            if self._done:
                return _EOF
            if self._cancelled:
                raise asyncio.CancelledError()
            if self._error is not None:
                raise self._error
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def take_ready(self, kinds: frozenset[str]) -> worker_pb2.WorkerEvent | None:
        """The next event without waiting, if one is here and of one of `kinds`; else None."""
        events = self._events
        if events and events[0].WhichOneof("payload") in kinds:
            return events.popleft()
        return None

    def cancel(self) -> bool:
        """Stop following the job (the worker keeps it running, as after a cancelled Execute)."""
        if self._cancelled or self._done or self._error is not None:
            return False
        self._cancelled = True
        self._session._detach(self)
        self._wake()
        return True

    def done(self) -> bool:
        """True once the call has ended (terminal event read, refused, broken or cancelled)."""
        return self._done or self._cancelled or self._error is not None

    def _push(self, event: worker_pb2.WorkerEvent) -> None:
        self._events.append(event)
        self._wake()

    def _fail(self, error: grpc.aio.AioRpcError) -> None:
        if self._error is None:
            self._error = error
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class WorkerSession:
    """One Session stream to one worker instance, multiplexing the calls of many jobs.

    Args:
        stub: the worker's stub (its channel is shared with Describe, Cancel, ...).
        name: the instance, for log lines.
    """

    def __init__(self, stub: worker_pb2_grpc.WorkerStub, name: str) -> None:
        self._name = name
        self._calls: dict[str, SessionCall] = {}
        self._outbox = Outbox(worker_pb2.SessionRequest, "commands")
        self._wake: asyncio.Future[None] | None = None
        self.broken: grpc.aio.AioRpcError | None = None
        self._call = stub.Session()
        loop = asyncio.get_running_loop()
        self._writer = loop.create_task(self._write(), name=f"session-write-{name}")
        self._reader = loop.create_task(self._read(), name=f"session-read-{name}")

    def execute(self, request: worker_pb2.ExecuteRequest) -> SessionCall:
        """Start (or re-follow) a job attempt on the worker; its events arrive on the call."""
        return self._open(request.job_id, execute=request)

    def attach(self, request: worker_pb2.AttachRequest) -> SessionCall:
        """Follow a job the worker runs (or ran recently) from ``request.after_seq`` on."""
        return self._open(request.job_id, attach=request)

    def cancel(self, job_id: str, reason: str = "") -> None:
        """Ask the worker to cancel a job (fire and forget, like a Cancel whose reply is ignored)."""
        if self.broken is None:
            self._send(cancel=worker_pb2.CancelRequest(job_id=job_id, reason=reason))

    def _open(self, job_id: str, **command: Any) -> SessionCall:
        call = SessionCall(self, job_id)
        if self.broken is not None:
            call._fail(self.broken)
            return call
        earlier = self._calls.get(job_id)
        if earlier is not None:
            # The worker follows a job once per session: the new call replaces the old one.
            earlier._fail(_rpc_error(grpc.StatusCode.CANCELLED, "replaced by a new call for the same job"))
        self._calls[job_id] = call
        self._send(**command)
        return call

    def _detach(self, call: SessionCall) -> None:
        if self._calls.get(call.job_id) is call:
            del self._calls[call.job_id]
            if self.broken is None:
                self._send(detach=call.job_id)

    def _send(self, **command: Any) -> None:
        self._outbox.add(**command)
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def _write(self) -> None:
        call = self._call
        try:
            while True:
                if not self._outbox:
                    self._wake = asyncio.get_running_loop().create_future()
                    await self._wake
                    self._wake = None
                    continue
                await call.write(self._outbox.take())
        except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError) as exc:
            # The reader sees the call's status and fails the calls; nothing more can be sent.
            log.debug("session to %s: write failed: %s", self._name, exc)

    async def _read(self) -> None:
        call = self._call
        calls = self._calls
        error: grpc.aio.AioRpcError
        try:
            while True:
                reply = await call.read()
                if reply is _EOF:
                    error = _rpc_error(grpc.StatusCode.UNAVAILABLE, f"worker {self._name} ended the session")
                    break
                for item in reply.events:
                    target = calls.get(item.job_id)
                    if target is None:
                        continue  # detached: the worker may still send what was under way
                    if item.HasField("error"):
                        del calls[item.job_id]
                        target._fail(_rpc_error(_status_code(item.error.code), item.error.message))
                        continue
                    event = item.event
                    target._push(event)
                    if event.WhichOneof("payload") in _TERMINAL:
                        del calls[item.job_id]
        except grpc.aio.AioRpcError as exc:
            # Whatever ended the stream (connection refused or reset, worker stopped, channel
            # closed), every job on it is in the state of a broken Execute stream: UNAVAILABLE.
            error = _rpc_error(
                grpc.StatusCode.UNAVAILABLE, f"session to {self._name} broke: {exc.code().name}: {exc.details()}"
            )
        except asyncio.CancelledError:
            error = _rpc_error(grpc.StatusCode.UNAVAILABLE, f"session to {self._name} closed")
            self._break(error)
            raise
        self._break(error)

    def _break(self, error: grpc.aio.AioRpcError) -> None:
        if self.broken is not None:
            return
        self.broken = error
        self._writer.cancel()
        self._call.cancel()
        calls, self._calls = self._calls, {}
        for call in calls.values():
            call._fail(error)
        if calls:
            log.warning("session to %s broke with %d job(s) on it: %s", self._name, len(calls), error.details())

    async def close(self) -> None:
        """End the stream; calls still open fail as on a broken session."""
        self._break(_rpc_error(grpc.StatusCode.UNAVAILABLE, f"session to {self._name} closed"))
        for task in (self._reader, self._writer):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.gather(self._reader, self._writer, return_exceptions=True)
