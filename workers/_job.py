"""One job attempt on this worker: runs the handler and buffers its numbered events.

The events live here, not in the Execute call, so that a client that goes away (a gateway
restart) can re-attach with Attach and continue from the last event it stored, while the
handler keeps running. A handler is one asyncio task (``async def``) or one daemon thread
(``def``); there is no extra task or thread per job beyond that.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import datetime as _dt
import functools
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from opentelemetry.trace import Status, StatusCode

from workmesh.services.core.errors import ApplicationError
from workmesh.services.core.outcome import Outcome
from workmesh.services.core.telemetry import extract_context, job_span
from workmesh.services.core.tls import TlsConfig
from workmesh.v1 import common_pb2, worker_pb2
from workmesh.workers._context import Cancelled, Context
from workmesh.workers._decorator import WorkflowDefinition
from workmesh.workers._result import job_result

log = logging.getLogger("workmesh.workers")
PROGRESS_INTERVAL = 0.05  # default seconds between two progress events of one job (Worker(progress_interval=))

WorkerEvent = worker_pb2.WorkerEvent
_LOG_LEVEL = common_pb2.LogLevel


class Host(Protocol):
    """What a job needs from its worker."""

    instance_id: str
    started: worker_pb2.Started
    stream_log_level: int
    progress_interval: float
    cancel_grace: float
    orphan_timeout: float
    series_factory: Callable[..., Any] | None
    tls: TlsConfig  # of the channels a handler's ctx.step opens to the gateway

    def job_released(self, job: Job) -> None: ...
    def job_finished(self, job: Job) -> None: ...


def _proto_level(level: int) -> common_pb2.LogLevel:
    if level < logging.INFO:
        return _LOG_LEVEL.LOG_LEVEL_DEBUG
    if level < logging.WARNING:
        return _LOG_LEVEL.LOG_LEVEL_INFO
    if level < logging.ERROR:
        return _LOG_LEVEL.LOG_LEVEL_WARNING
    return _LOG_LEVEL.LOG_LEVEL_ERROR


def _start_thread(call: Callable[[], Any], name: str) -> concurrent.futures.Future[Any]:
    """Run `call` in a new daemon thread.

    Not a pool: a handler that ignores cancellation can never be stopped, and a pool's threads
    are joined at interpreter exit, so one stuck handler would keep a drained worker from
    exiting. A thread start costs far less than any job worth running in a thread.
    """
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def target() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(call())
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting job
            future.set_exception(exc)

    threading.Thread(target=target, name=name, daemon=True).start()
    return future


class Job:
    """One attempt of one job: its handler run, its events, who follows them."""

    def __init__(
        self, host: Host, definition: WorkflowDefinition, request: worker_pb2.ExecuteRequest, kwargs: dict[str, Any]
    ) -> None:
        self.host = host
        self.definition = definition
        self.job_id = request.job_id
        self.attempt = request.attempt or 1
        # The attempt's series write capability (auth on): for the series writer only, never
        # shown to handler code or logged.
        self.series_token = request.series_token
        self.gateway_address = request.gateway_address  # where ctx.step calls RunStep ("" : no steps)
        # The series refs of each step that succeeded, by step name in the order the steps were
        # asked for: a workflow's result lists its steps' series after its own (see with_steps).
        self.step_series: dict[str, tuple[common_pb2.SeriesRef, ...]] = {}
        self.trace_context = dict(request.trace_context)  # W3C carrier of the job's trace (may be empty)
        self.outcome: Outcome | None = None  # once done
        self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()
        self.series_factory = host.series_factory
        self.events: list[WorkerEvent] = []
        self.done = False  # the terminal event is in `events`
        self.running = True  # the handler (or its thread) has not returned yet
        self.cancel_requested = False
        self.cancel_reason = ""
        self.cancel_code = "CANCELLED"
        self.finished_at = 0.0
        self._waiters: list[asyncio.Future[None]] = []
        self._listeners: list[Callable[[Job, WorkerEvent], None]] = []  # Session streams following
        self._followers = 0
        self._timers: list[asyncio.TimerHandle] = []
        self._orphan: asyncio.TimerHandle | None = None
        self._last_progress = -1.0
        self._pending: tuple[float, str] | None = None
        self._progress_timer: asyncio.TimerHandle | None = None
        self._thread_lock = threading.Lock()
        self._thread_pending: tuple[float, str] | None = None
        self._thread_flush = False
        self._thread_sent = -1.0
        self._future: concurrent.futures.Future[Any] | None = None
        deadline = None
        if request.HasField("deadline"):
            deadline = request.deadline.ToDatetime(tzinfo=_dt.UTC)
            delay = request.deadline.ToNanoseconds() / 1e9 - time.time()
            self._timers.append(self.loop.call_later(max(delay, 0.0), self.cancel, "deadline exceeded", "TIMED_OUT"))
        self.ctx = Context(
            self,
            job_id=self.job_id,
            attempt=self.attempt,
            workflow_type=definition.name,
            params=kwargs,
            instance_id=host.instance_id,
            deadline=deadline,
        )
        self.task = self.loop.create_task(self._run(kwargs), name=f"workmesh-job-{self.job_id}")

    # -- events ---------------------------------------------------------------------------------

    def _append(self, event: WorkerEvent) -> None:
        event.seq = len(self.events) + 1
        ns = time.time_ns()
        event.time.seconds, event.time.nanos = divmod(ns, 1_000_000_000)
        self.events.append(event)
        if self._listeners:
            for listener in tuple(self._listeners):
                listener(self, event)
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def follow(self, after_seq: int = 0) -> AsyncIterator[WorkerEvent]:
        """The events after `after_seq`, then live ones until the terminal event."""
        self._followed()
        try:
            index = after_seq
            events = self.events
            while True:
                while index < len(events):
                    yield events[index]
                    index += 1
                if self.done:
                    return
                # One future per follower: a follower that goes away cancels only its own.
                waiter = self.loop.create_future()
                self._waiters.append(waiter)
                await waiter
        finally:
            self._unfollowed()

    def listen(self, listener: Callable[[Job, WorkerEvent], None], after_seq: int = 0) -> None:
        """Call `listener(job, event)` for the events after `after_seq`, then for each new one.

        The callback form of :meth:`follow` for Session streams (no task per job): it counts as a
        follower until the terminal event has been passed on or :meth:`unlisten` is called.
        """
        self._followed()
        for event in self.events[after_seq:]:
            listener(self, event)
        if self.done:
            self._unfollowed()
        else:
            self._listeners.append(listener)

    def unlisten(self, listener: Callable[[Job, WorkerEvent], None]) -> None:
        """Stop calling `listener` (like a follower going away); no-op when it is not listening."""
        if listener in self._listeners:
            self._listeners.remove(listener)
            self._unfollowed()

    def _followed(self) -> None:
        self._followers += 1
        if self._orphan is not None:
            self._orphan.cancel()
            self._orphan = None

    def _unfollowed(self) -> None:
        self._followers -= 1
        if self._followers == 0 and not self.done and self.host.orphan_timeout >= 0:
            # Nobody follows any more (the gateway went away): keep running for a re-attach,
            # but not forever.
            self._orphan = self.loop.call_later(
                self.host.orphan_timeout, self.cancel, f"no client attached for {self.host.orphan_timeout:g}s"
            )

    # -- handler side (may be called from the handler's thread) ----------------------------------

    def progress(self, fraction: float, message: str) -> None:
        if threading.get_ident() != self.loop_thread:
            self._thread_progress(fraction, message)
            return
        if self.done:
            return
        now = time.monotonic()
        if self._progress_timer is None and now - self._last_progress >= self.host.progress_interval:
            self._last_progress = now
            self._append(WorkerEvent(progress=common_pb2.Progress(fraction=fraction, message=message)))
        else:
            self._pending = (fraction, message)
            if self._progress_timer is None:
                delay = self._last_progress + self.host.progress_interval - now
                self._progress_timer = self.loop.call_later(max(delay, 0.0), self._flush_progress)

    def _from_thread(self, callback: Callable[..., object], *args: Any) -> None:
        # RuntimeError: the loop is closed (a thread outlived its worker); nobody listens any more.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(callback, *args)

    def _thread_progress(self, fraction: float, message: str) -> None:
        # From the handler's thread: the rate limit is applied here, so a tight loop costs one
        # lock and a clock read per call, and the loop is woken at most once per interval.
        with self._thread_lock:
            now = time.monotonic()
            if not self._thread_flush and now - self._thread_sent >= self.host.progress_interval:
                self._thread_sent = now
                send, schedule = True, False
            else:
                self._thread_pending = (fraction, message)
                send, schedule = False, not self._thread_flush
                self._thread_flush = True
                delay = self._thread_sent + self.host.progress_interval - now
        if send:
            self._from_thread(self._emit_progress, fraction, message)
        elif schedule:
            self._from_thread(self.loop.call_later, max(delay, 0.0), self._take_thread_progress)

    def _take_thread_progress(self) -> None:
        with self._thread_lock:
            pending, self._thread_pending, self._thread_flush = self._thread_pending, None, False
            self._thread_sent = time.monotonic()
        if pending is not None:
            self._emit_progress(*pending)

    def _emit_progress(self, fraction: float, message: str) -> None:
        if not self.done:
            self._append(WorkerEvent(progress=common_pb2.Progress(fraction=fraction, message=message)))

    def _flush_progress(self) -> None:
        self._progress_timer = None
        if self._pending is not None and not self.done:
            fraction, message = self._pending
            self._pending = None
            self._last_progress = time.monotonic()
            self._append(WorkerEvent(progress=common_pb2.Progress(fraction=fraction, message=message)))

    def log_event(self, level: int, message: str, fields: dict[str, str]) -> None:
        if threading.get_ident() != self.loop_thread:
            self._from_thread(self.log_event, level, message, fields)
            return
        if not self.done:
            self._append(WorkerEvent(log=common_pb2.LogLine(level=_proto_level(level), message=message, fields=fields)))

    # -- lifecycle --------------------------------------------------------------------------------

    def cancel(self, reason: str = "cancelled", code: str = "CANCELLED") -> bool:
        """Ask the handler to stop; force it after the host's grace period. False if already done."""
        if self.done:
            return False
        if not self.cancel_requested:
            self.cancel_requested = True
            self.cancel_reason = reason
            self.cancel_code = code
            self.ctx._on_cancel()
            self._timers.append(self.loop.call_later(self.host.cancel_grace, self._force))
        return True

    def _force(self) -> None:
        if not self.done:
            log.warning("job %s ignored its cancellation for %gs; stopping it", self.job_id, self.host.cancel_grace)
            self.task.cancel()

    async def _run(self, kwargs: dict[str, Any]) -> None:
        # Started here, in the task's first step, not when the job is made: a handler that
        # returns without waiting (a short job) has its result appended in this same loop turn,
        # so the Session stream sends both in one message and the gateway stores RUNNING with
        # the result in one commit (from __init__ the stream could send 'started' alone first).
        self._append(WorkerEvent(started=self.host.started))
        # The attempt's span joins the job's trace (parent: the gateway's attempt span, carried
        # in the request since calls may share one Session stream); while it is open, log lines
        # of the handler (task, or thread via copy_context) carry job_id and trace_id.
        parent = extract_context(self.trace_context) if self.trace_context else None
        with job_span(
            "job.execute",
            job_id=self.job_id,
            workflow_type=self.definition.name,
            attempt=self.attempt,
            instance=self.host.instance_id,
            parent=parent,
        ) as span:
            end = await self._outcome(kwargs)
            if self.ctx._series is not None:  # close the job's series writer into the result, or abort it
                end = await self.ctx._series.finish(end)
            if self.step_series and isinstance(end, common_pb2.JobResult):
                from workmesh.workers._steps import with_steps  # loaded already: steps ran

                with_steps(end, self.step_series.values())
            if isinstance(end, common_pb2.JobError) and span.is_recording():
                span.set_status(Status(StatusCode.ERROR, f"{end.code}: {end.message}"))
        self._finish(end)

    async def _outcome(self, kwargs: dict[str, Any]) -> common_pb2.JobResult | common_pb2.JobError:
        """The handler's result, or the error it ended with."""
        definition = self.definition
        try:
            if definition.is_async:
                value = await definition.handler(self.ctx, **kwargs)
            else:
                call = functools.partial(contextvars.copy_context().run, definition.handler, self.ctx, **kwargs)
                self._future = _start_thread(call, f"workmesh-job-{self.job_id}")
                value = await asyncio.wrap_future(self._future)
            return job_result(value)
        except Cancelled as exc:
            return common_pb2.JobError(code=self.cancel_code, message=self._cancel_message(exc))
        except asyncio.CancelledError:
            # Forced after the grace period, or the worker is shutting down.
            if not self.cancel_requested:
                self.cancel_requested, self.cancel_reason = True, "worker stopped"
            return common_pb2.JobError(
                code=self.cancel_code, message=f"{self.cancel_reason} (handler stopped after the grace period)"
            )
        except ApplicationError as exc:
            return common_pb2.JobError(code=exc.error_code, message=exc.message, retryable=exc.retryable)
        except Exception as exc:  # noqa: BLE001 - any handler failure becomes the job's error
            log.warning("job %s (%s) failed", self.job_id, definition.name, exc_info=True)
            return common_pb2.JobError(code="HANDLER_ERROR", message=f"{type(exc).__name__}: {exc}")

    def _cancel_message(self, exc: Cancelled) -> str:
        return self.cancel_reason or exc.message or "cancelled"

    def _finish(self, end: common_pb2.JobResult | common_pb2.JobError) -> None:
        if self.step_series:  # steps ran: the attempt's step stream closes
            from workmesh.workers._step_stream import close

            close(self.loop, self.job_id, self.attempt)
        if self._future is not None:
            self._take_thread_progress()
        if self._progress_timer is not None:
            self._progress_timer.cancel()
            self._flush_progress()
        if self._timers:
            for timer in self._timers:
                timer.cancel()
        if self._orphan is not None:
            self._orphan.cancel()
        if isinstance(end, common_pb2.JobResult):
            self._append(WorkerEvent(result=end))
            self.outcome = Outcome.SUCCEEDED
        else:
            self._append(WorkerEvent(error=end))
            self.outcome = Outcome.of_error(end)
        self.done = True
        if self._listeners:  # each got the terminal event: they stop following here
            self._followers -= len(self._listeners)
            self._listeners.clear()
        self.finished_at = time.monotonic()
        future = self._future
        if future is not None and not future.done():
            # A thread cannot be killed: the stream is told CANCELLED now, the thread finishes in
            # the background and keeps its capacity slot (its CPU is still busy) until it returns.
            log.warning(
                "job %s: handler thread still running after cancellation; it keeps a capacity slot until it returns",
                self.job_id,
            )
            future.add_done_callback(lambda _: self._from_thread(self._release))
        else:
            self._release()
        self.host.job_finished(self)

    def _release(self) -> None:
        if self.running:
            self.running = False
            self.host.job_released(self)
