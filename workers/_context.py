"""What a running handler sees: :class:`Context` (progress, logs, cancellation) and :class:`Result`."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc

from workmesh.services.core.errors import ApplicationError, WorkmeshError
from workmesh.v1 import common_pb2

if TYPE_CHECKING:
    import datetime as _dt

    from workmesh.workers._job import Job

_LOGGER = logging.getLogger("workmesh.workers.job")
_SERIES_LOCK = threading.Lock()  # a job's series state is made once, even from several threads
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}


class Cancelled(WorkmeshError):
    """Raised in a handler (by :meth:`Context.check_cancelled`) when its job was cancelled.

    Let it propagate: the worker reports the job as cancelled.
    """

    code = grpc.StatusCode.CANCELLED


@dataclass(frozen=True)
class Result:
    """What a handler may return instead of a plain dict.

    Attributes:
        outputs: JSON-like structured outputs (numbers, strings, bools, lists, dicts; numpy
            scalars and arrays, datetimes and timedeltas are converted).
        data: optional raw bytes (e.g. a file the front end offers for download).
        series: references to time series the job wrote (see ``Context.series``).
    """

    outputs: Mapping[str, Any] = field(default_factory=dict)
    data: bytes = b""
    series: Sequence[common_pb2.SeriesRef] = ()


def level_number(level: int | str) -> int:
    """A ``logging`` level number from a name ("info") or a number."""
    if isinstance(level, str):
        try:
            return _LEVELS[level.lower()]
        except KeyError:
            raise ValueError(f"unknown log level {level!r}; use one of {', '.join(_LEVELS)}") from None
    return int(level)


class _JobLogger(logging.LoggerAdapter):
    """A logger whose lines go to the job's event stream, and to Python logging as usual."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(_LOGGER, {"job_id": ctx.job_id, "workflow_type": ctx.workflow_type})
        self.ctx = ctx

    def log(
        self,
        level: int,
        msg: object,
        *args: Any,
        exc_info: Any = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
        **kwargs: object,
    ) -> None:
        if kwargs:  # what Logger.log would refuse after LoggerAdapter.log passed them on
            raise TypeError(f"log() got unexpected keyword arguments {sorted(kwargs)}")
        job = self.ctx._job
        if level >= job.host.stream_log_level:
            text = str(msg) % args if args else str(msg)
            job.log_event(level, text, {k: str(v) for k, v in (extra or {}).items()})
        if self.logger.isEnabledFor(level):
            self.logger.log(
                level,
                msg,
                *args,
                exc_info=exc_info,
                stack_info=stack_info,
                stacklevel=stacklevel + 1,
                extra={**(self.extra or {}), **(extra or {})},
            )


class Context:
    """The first argument of every handler: the job's identity, parameters and its channel back.

    All methods may be called from the event loop (``async def`` handlers) or from the handler's
    worker thread (``def`` handlers).

    Attributes:
        job_id: the job's id (the same across attempts).
        attempt: the attempt number, from 1.
        workflow_type: the type's name.
        params: the validated parameters as Python objects (defaults filled).
        instance_id: this worker instance.
        deadline: when the job times out (UTC), or ``None``.
    """

    __slots__ = (
        "job_id",
        "attempt",
        "workflow_type",
        "params",
        "instance_id",
        "deadline",
        "_job",
        "_logger",
        "_event",
        "_series",
    )

    def __init__(
        self,
        job: Job,
        *,
        job_id: str,
        attempt: int,
        workflow_type: str,
        params: dict[str, Any],
        instance_id: str,
        deadline: _dt.datetime | None,
    ) -> None:
        self.job_id = job_id
        self.attempt = attempt
        self.workflow_type = workflow_type
        self.params = params
        self.instance_id = instance_id
        self.deadline = deadline
        self._job = job
        self._logger: _JobLogger | None = None
        self._event: asyncio.Event | None = None
        self._series: Any = None  # the job's JobSeries, made on the first series() call

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress; cheap enough to call in a loop.

        Bursts are coalesced: at most one progress event per ~50 ms reaches the stream, and the
        last one is always delivered.

        Args:
            fraction: done so far, 0.0 to 1.0 (clamped).
            message: what is happening, e.g. "buildings 200-300".
        """
        f = float(fraction)
        if f != f:  # NaN
            raise ValueError("progress fraction must be a number between 0 and 1, got nan")
        self._job.progress(0.0 if f < 0.0 else 1.0 if f > 1.0 else f, str(message))

    def log(self, level: int | str, message: str, **fields: object) -> None:
        """Send a log line to the job's event stream (and to Python logging).

        Lines below the worker's ``stream_log_level`` (INFO by default) go to Python logging
        only: every streamed line becomes a stored job event.

        Args:
            level: "debug", "info", "warning", "error" or a ``logging`` level number.
            message: the line.
            **fields: structured context, sent as strings.
        """
        self.logger.log(level_number(level), message, extra=fields)

    @property
    def logger(self) -> logging.LoggerAdapter:
        """A ``logging`` logger whose lines (INFO and up by default) also go to the job's event stream."""
        if self._logger is None:
            self._logger = _JobLogger(self)
        return self._logger

    @property
    def cancelled(self) -> bool:
        """True once the job was asked to stop (cancel, timeout, orphaned, worker draining)."""
        return self._job.cancel_requested

    def check_cancelled(self) -> None:
        """Raise :class:`Cancelled` if the job was asked to stop."""
        if self._job.cancel_requested:
            raise Cancelled(self._job.cancel_reason or "cancelled")

    async def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Wait until the job is cancelled or `timeout` seconds pass (async handlers only).

        Returns:
            True if the job was cancelled.
        """
        if self._job.cancel_requested:
            return True
        if self._job.loop_thread != threading.get_ident():
            raise RuntimeError(
                "wait_cancelled() is for async handlers; in a thread poll ctx.cancelled or call ctx.check_cancelled()"
            )
        if self._event is None:
            self._event = asyncio.Event()
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def _on_cancel(self) -> None:
        """Called on the loop by the job when it is cancelled."""
        if self._event is not None:
            self._event.set()

    def step(
        self, name: str, workflow_type: str, params: Mapping[str, Any] | None = None, *, weight: float = 1.0
    ) -> Any:
        """Run another workflow type as a step of this job: a child job, and return its result.

        From an ``async def`` handler, await it (several steps in parallel with
        ``asyncio.gather``)::

            sim = await ctx.step("simulate", "heat-demand", {"buildings": 500})
            kpi = await ctx.step("kpi", "kpi", {"demand": sim.outputs["total_kwh"]})

        From a ``def`` handler (a worker thread) the same call blocks instead.

        A step is identified by (this job, `name`) and runs at most once to success: when this
        job runs again (its worker died, or it was retried with RetryJob), a step that succeeded
        returns its stored result at once without running, one still running is awaited, and
        one that failed runs again. The child job is routed, retried, timed out and traced like
        any job; it is listed with this job as its ``parent_id`` and can be watched on its own.

        Args:
            name: the step's name, unique within this job (the same name with another type or
                other params is refused).
            workflow_type: the type the step runs (any type a live worker serves).
            params: its parameters as Python values (numbers, strings, bools, datetimes,
                timedeltas, bytes), checked by the gateway against that type.
            weight: the step's share in this job's progress, which the gateway rolls up from
                its steps' progress (the weighted mean over the steps so far; 1 each unless
                declared, at most 1e6).

        Returns:
            The child's :class:`Result` (outputs as plain Python values, data, series refs —
            each naming the job that wrote it); a coroutine in async handlers. When this
            job succeeds, its result lists the series of its succeeded steps after its own.

        Raises:
            StepFailed: the child failed, was cancelled or timed out (``job_id``, ``code`` say
                which and why), or the gateway refused the step (``status``: NOT_FOUND for an
                unknown type — the message names the available ones —, FAILED_PRECONDITION for
                a reused name, RESOURCE_EXHAUSTED past the limits on steps).
        """
        from workmesh.workers._steps import run_step  # the gateway client: loaded with the first step

        job = self._job
        coro = run_step(job, name, workflow_type, params, weight)
        if job.loop_thread == threading.get_ident():
            return coro
        return asyncio.run_coroutine_threadsafe(coro, job.loop).result()

    def series(
        self, measurement: str, /, *, units: Mapping[str, str] | None = None, time_unit: str = "ns", **tags: str
    ) -> Any:
        """A time series of this job, written to the results service.

        From an ``async def`` handler the write is awaited (back-pressure: it waits while the
        results service is busy storing)::

            await ctx.series("heat", asset="b12", units={"Q": "kW"}).write(ts, Q=q, T=t)

        From a ``def`` handler (a worker thread) the same call blocks instead::

            ctx.series("heat", asset="b12", units={"Q": "kW"}).write(ts, Q=q, T=t)

        Timestamps are numpy ``datetime64`` (any unit) or integers in `time_unit`; fields are
        lists or numpy arrays of floats, all as long as the timestamps. The worker finds the
        results service on the job's first series call, closes the job's writer when the
        handler returns and lists the series written (``SeriesRef``: store, host, database,
        measurement, field, tags, count, unit) in the job's result. If the job fails or is
        cancelled, the writer is aborted: what the service acknowledged stays, nothing else.
        A retried attempt first deletes what earlier attempts stored.

        Args:
            measurement: the series' measurement name (letters, digits, ``_ . -``).
            units: display unit per field, e.g. ``{"Q": "kW"}``.
            time_unit: unit of integer timestamps: ``"s"``, ``"ms"``, ``"us"`` or ``"ns"`` —
                one per job (``units`` and ``time_unit`` are keywords, not tags).
            **tags: the tag set that identifies the series within the job (string values).

        Returns:
            A handle whose ``write(timestamps, **fields)`` is a coroutine in async handlers and
            a blocking call in threads.

        Raises:
            ApplicationError: code ``RESULTS_UNAVAILABLE`` (retryable) when no results service
                is registered (raised here in threads, by the first ``write`` in async handlers).
            InvalidArgument: an invalid measurement, tag or time unit.
        """
        factory = self._job.series_factory
        if factory is None:
            raise ApplicationError(
                "cannot write series: this worker has no results service connection (its series_factory is None)",
                code="RESULTS_UNAVAILABLE",
                retryable=True,
            )
        if self._series is None:
            with _SERIES_LOCK:
                if self._series is None:
                    self._series = factory(self)
        return self._series.handle(measurement, units=units, time_unit=time_unit, tags=tags)
