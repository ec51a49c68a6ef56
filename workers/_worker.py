"""The Worker: serves workflow types over gRPC, runs their jobs, registers and drains."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib.metadata
import logging
import signal
import time
from collections.abc import Callable, Iterable
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2

from workmesh.registry import WORKFLOW_TAG, Registrar, RegistryConfig, ServiceRegistration, service_name
from workmesh.services.core.errors import WORKER_DRAINING, InvalidArgument, NotFound, ResourceExhausted, Unavailable
from workmesh.services.core.net import join_host_port
from workmesh.services.core.telemetry import WorkerMetrics
from workmesh.services.core.tls import TlsConfig
from workmesh.v1 import worker_pb2
from workmesh.workers._config import WorkerConfig, default_instance_id
from workmesh.workers._decorator import WorkflowDefinition, definition_of
from workmesh.workers._job import PROGRESS_INTERVAL, Job
from workmesh.workers._series import ResultsConnection
from workmesh.workers.params import to_python
from workmesh.workers.transport._servicer import create_server

log = logging.getLogger("workmesh.workers")

try:
    SDK_VERSION = importlib.metadata.version("workmesh")
except importlib.metadata.PackageNotFoundError:  # running from a source tree
    SDK_VERSION = "0.0.0"

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _definitions(workflows: Iterable[Any]) -> list[WorkflowDefinition]:
    if callable(workflows) and definition_of(workflows) is not None:
        workflows = [workflows]
    found: list[WorkflowDefinition] = []
    for fn in workflows:
        definition = fn if isinstance(fn, WorkflowDefinition) else definition_of(fn)
        if definition is None:
            what = getattr(fn, "__qualname__", repr(fn))
            raise TypeError(
                f"{what} is not a workflow: decorate it with "
                f'@workflow(name="...", version="...", params=[...]) from workmesh.workers'
            )
        found.append(definition)
    if not found:
        raise ValueError("a Worker needs at least one workflow function")
    names = [d.name for d in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"workflow types declared twice in one Worker: {duplicates}")
    return found


class Worker:
    """Serves workflow types: runs their jobs, streams their events, registers them, drains.

    Args:
        workflows: functions decorated with :func:`workflow`.
        capacity: jobs this instance runs at once (more Executes get RESOURCE_EXHAUSTED).
        instance_id: this instance's id (default: from the config, or ``<host>-<pid>-<random>``).
        cancel_grace: seconds a cancelled handler gets to stop by itself before it is forced.
        orphan_timeout: seconds a running job waits for a client to re-attach after its stream
            went away, before it is cancelled (negative: wait forever).
        retention: seconds a finished job's events stay available to Attach.
        max_retained: at most this many finished jobs are kept (oldest dropped first).
        series_factory: what ``ctx.series`` writes through: called with a job's context on its
            first series call, it returns the job's series state (default: a
            ``ResultsConnection`` that finds ``workmesh-results`` in the registry on first use
            and keeps one channel for all jobs; pass ``ResultsConnection("host:port")`` to
            use a fixed address).
        stream_log_level: handler log lines at this ``logging`` level and above become job
            events; lower ones go to Python logging only.
        progress_interval: seconds between two progress events of one job; ``ctx.progress``
            calls in between are coalesced (the last one is always sent). 0 sends every call
            (the progress benchmark: each becomes a stored job event).

    A Worker runs one gRPC server at a time; use :meth:`run` in a process, or :meth:`start` and
    :meth:`stop` when embedding it (tests, ``workmesh dev``).

    Cancellation (Cancel, a passed deadline, an orphaned job, the end of a drain) sets
    ``ctx.cancelled``; a handler that does not stop within `cancel_grace` is forced: an async
    handler's task is cancelled; a thread cannot be killed, so the job is reported CANCELLED at
    once and its thread finishes in the background, keeping its capacity slot until it returns
    (its CPU is still busy, so the capacity the gateway sees stays honest).

    Each attempt's events are kept in memory while it runs and `retention` seconds after it
    ends, so a client (a restarted gateway) can Attach and resume after the last event it has.
    """

    def __init__(
        self,
        workflows: Iterable[Any],
        *,
        capacity: int = 4,
        instance_id: str | None = None,
        cancel_grace: float = 5.0,
        orphan_timeout: float = 600.0,
        retention: float = 600.0,
        max_retained: int = 10_000,
        series_factory: Callable[..., Any] | None = None,
        stream_log_level: int = logging.INFO,
        progress_interval: float = PROGRESS_INTERVAL,
    ) -> None:
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be an int ≥ 1, got {capacity!r}")
        self.definitions = {d.name: d for d in _definitions(workflows)}
        self.capacity = capacity
        self.instance_id = instance_id or ""
        self.started = worker_pb2.Started(instance_id=self.instance_id)  # the first event of every job
        self.cancel_grace = cancel_grace
        self.orphan_timeout = orphan_timeout
        self.retention = retention
        self.max_retained = max_retained
        if series_factory is None:
            series_factory = ResultsConnection()
        self.series_factory: Callable[..., Any] | None = series_factory
        self.stream_log_level = stream_log_level
        if progress_interval < 0:
            raise ValueError(f"progress_interval must be ≥ 0, got {progress_interval!r}")
        self.progress_interval = progress_interval
        self.port: int | None = None
        self.tls = TlsConfig()  # of the channels a handler's ctx.step opens to the gateway
        self.draining = False
        self._param_types = {d.name: {p.name: p.type for p in d.params} for d in self.definitions.values()}
        self._types = [d.proto for d in self.definitions.values()]
        self._jobs: dict[str, Job] = {}
        self._finished: collections.deque[Job] = collections.deque()
        self._next_prune = 0.0
        self._running = 0
        self._running_by_type: collections.Counter[str] = collections.Counter()
        self._metrics: Any = None
        self._server: grpc.aio.Server | None = None
        self._health: Any = None
        self._registrar: Any = None
        self._idle: asyncio.Event | None = None

    @property
    def running(self) -> int:
        """Jobs whose handler has not returned yet."""
        return self._running

    # -- called by the servicer -------------------------------------------------------------------

    def describe(self) -> worker_pb2.DescribeResponse:
        return worker_pb2.DescribeResponse(
            instance_id=self.instance_id,
            types=self._types,
            capacity=self.capacity,
            running=self._running,
            sdk_version=SDK_VERSION,
            session=True,
        )

    def execute(self, request: worker_pb2.ExecuteRequest) -> tuple[Job, int]:
        """Start a job attempt, or find the one already here; returns it and the seq to follow after."""
        if self._finished and time.monotonic() >= self._next_prune:
            self._prune()
        existing = self._jobs.get(request.job_id)
        if existing is not None and (not existing.done or request.attempt <= existing.attempt):
            return existing, 0  # idempotent: the same job is never run twice at once here
        if self.draining:
            raise Unavailable(WORKER_DRAINING)
        definition = self.definitions.get(request.workflow_type)
        if definition is None:
            raise NotFound(
                f"workflow type {request.workflow_type!r} is not served by this worker; "
                f"it serves: {', '.join(sorted(self.definitions))}"
            )
        if not request.job_id:
            raise InvalidArgument("job_id", "must not be empty")
        if self._running >= self.capacity:
            raise ResourceExhausted(f"worker is at capacity ({self.capacity} jobs running)")
        values = definition.validator.validate(request.params)
        types = self._param_types[definition.name]
        kwargs: dict[str, Any] = {name: None for name in types} if len(values) != len(types) else {}
        for name, value in values.items():
            kwargs[name] = to_python(types[name], value)
        if request.HasField("deadline"):
            try:
                request.deadline.ToDatetime()
            except (ValueError, OverflowError):
                raise InvalidArgument("deadline", "must be a valid timestamp") from None
        job = Job(self, definition, request, kwargs)
        self._jobs[request.job_id] = job
        self._running += 1
        self._running_by_type[definition.name] += 1
        if self._idle is not None:
            self._idle.clear()
        return job, 0

    def attach(self, job_id: str, after_seq: int) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"job {job_id!r} is not known on this worker (finished jobs are kept {self.retention:g}s)")
        return job

    def cancel(self, job_id: str, reason: str = "cancelled") -> bool:
        job = self._jobs.get(job_id)
        if job is None:
            return False
        job.cancel(reason)
        return True

    # -- called by jobs ---------------------------------------------------------------------------

    def job_released(self, job: Job) -> None:
        self._running -= 1
        self._running_by_type[job.definition.name] -= 1
        if self._running == 0 and self._idle is not None:
            self._idle.set()

    def job_finished(self, job: Job) -> None:
        if self._metrics is not None:
            self._metrics.job_finished(job.definition.name, job.outcome.label if job.outcome else "")
        self._finished.append(job)
        if len(self._finished) > self.max_retained:
            self._prune()

    def _prune(self) -> None:
        now = time.monotonic()
        self._next_prune = now + 1.0  # retention is coarse; no need to look on every Execute
        horizon = now - self.retention
        finished = self._finished
        while finished and (finished[0].finished_at < horizon or len(finished) > self.max_retained):
            job = finished.popleft()
            if self._jobs.get(job.job_id) is job:
                del self._jobs[job.job_id]

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self, config: WorkerConfig | None = None, *, register: bool | None = None) -> int:
        """Serve on the configured address and register the types; returns the bound port."""
        if self._server is not None:
            raise RuntimeError("this Worker is already serving")
        config = config or WorkerConfig(register=False)
        if config.capacity is not None:
            self.capacity = config.capacity
        self.instance_id = self.instance_id or config.instance_id or default_instance_id()
        self.started = worker_pb2.Started(instance_id=self.instance_id)
        self.tls = config.tls
        self.draining = False
        factory = self.series_factory
        if isinstance(factory, ResultsConnection) and factory.registry is None and config.registry is not None:
            factory.registry = config.registry  # look for the results service where we register
        self._idle = asyncio.Event()
        if self._running == 0:
            self._idle.set()
        if config.orphan_timeout is not None:
            self.orphan_timeout = config.orphan_timeout
        if config.cancel_grace is not None:
            self.cancel_grace = config.cancel_grace
        if self._metrics is None:
            self._metrics = WorkerMetrics(self.instance_id)
            # Read on the exporter's thread: plain copies of in-memory counters.
            self._metrics.observe(
                running=lambda: {k: v for k, v in self._running_by_type.items() if v}, capacity=lambda: self.capacity
            )
        self._health = health.aio.HealthServicer()
        server, port = create_server(self, config.host, config.port, health_servicer=self._health, tls=config.tls)
        await server.start()
        self._server, self.port = server, port
        for name in ("", *self.definitions):
            await self._health.set(name, _SERVING)
        if config.register if register is None else register:
            try:
                await self._register(config, port)
            except BaseException:
                await self.stop(grace=0)
                raise
        log.info(
            "worker %s serving %s on %s:%d (capacity %d)",
            self.instance_id,
            ", ".join(self.definitions),
            config.advertise_host,
            port,
            self.capacity,
        )
        return port

    async def _register(self, config: WorkerConfig, port: int) -> None:
        address = config.advertise_host
        registrations = [
            ServiceRegistration(
                name=service_name(d.name),
                service_id=f"{service_name(d.name)}-{self.instance_id}",
                address=address,
                port=port,
                tags=(WORKFLOW_TAG,),
                meta={
                    "workflow_type": d.name,
                    "version": d.version[:512],
                    "capacity": str(self.capacity),
                    "sdk_version": SDK_VERSION,
                },
                grpc_check=f"{join_host_port(address, port)}/{d.name}",
                grpc_tls=config.tls.serves_tls,
                tls_server_name=config.tls.server_name,
            )
            for d in self.definitions.values()
        ]
        self._registrar = Registrar(config.registry or RegistryConfig.from_env(), registrations)
        await self._registrar.start()

    async def drain(self, grace: float = 30.0, force: asyncio.Event | None = None) -> None:
        """Stop taking jobs, deregister, give running jobs `grace` seconds, then cancel the rest.

        Args:
            grace: seconds running jobs may take to finish.
            force: when set while waiting, running jobs are cancelled at once.
        """
        if not self.draining:
            self.draining = True
            if self._health is not None:
                for name in ("", *self.definitions):
                    await self._health.set(name, _NOT_SERVING)
            if self._registrar is not None:
                try:
                    await self._registrar.deregister_now()
                except Exception:  # noqa: BLE001 - the health check and TTL reaper still retire us
                    log.warning("deregistering from the registry failed", exc_info=True)
            log.info("worker %s draining: %d job(s) running, grace %gs", self.instance_id, self._running, grace)
        waiters = [asyncio.ensure_future(self._idle.wait())] if self._idle is not None else []
        if force is not None:
            waiters.append(asyncio.ensure_future(force.wait()))
        if waiters and self._running:
            await asyncio.wait(waiters, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        live = [job for job in self._jobs.values() if not job.done]
        for job in live:
            job.cancel("worker shutting down")
        if live:
            # Handlers that check get cancel_grace to stop; the rest are forced by then.
            await asyncio.wait([job.task for job in live], timeout=self.cancel_grace + 1.0)

    async def stop(self, grace: float = 30.0) -> None:
        """Drain (see :meth:`drain`), stop serving and deregister."""
        if self._server is None:
            return
        await self.drain(grace)
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        # The final events are already written; a short grace lets the streams carry them out.
        await self._server.stop(grace=1.0)
        self._server = None
        if self._registrar is not None:
            with contextlib.suppress(Exception):
                await self._registrar.stop()
            self._registrar = None
        close = getattr(self.series_factory, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()

    async def run(self, config: WorkerConfig | None = None) -> None:
        """Serve until SIGTERM or SIGINT, then drain within ``config.drain_grace`` and return.

        A second signal while draining cancels the running jobs at once.
        """
        config = config or WorkerConfig.from_env()
        loop = asyncio.get_running_loop()
        stop, force = asyncio.Event(), asyncio.Event()

        def on_signal() -> None:
            (force if stop.is_set() else stop).set()

        await self.start(config)
        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, on_signal)
                installed.append(sig)
        try:
            await stop.wait()
            await self.drain(config.drain_grace, force)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await self.stop(grace=0)
        log.info("worker %s stopped", self.instance_id)
