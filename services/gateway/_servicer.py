"""The Gateway gRPC servicer: request checks and the mapping onto catalog, store and dispatcher."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import time

from workmesh.registry import find_service
from workmesh.services.clients import ResultsClient
from workmesh.services.core.auth import JOBS_SUBMIT, TYPES_READ, GrantStore, current_identity, require_scope
from workmesh.services.core.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
    WorkmeshError,
    abort,
)
from workmesh.services.core.limits import MAX_MESSAGE_BYTES
from workmesh.services.core.telemetry import current_trace_id, current_traceparent, job_span
from workmesh.services.gateway._access import (
    MANAGE,
    READ,
    list_filter,
    owned_key,
    scan_visible,
    visible_job,
)
from workmesh.services.gateway._audit import audit_entry, record_action
from workmesh.services.gateway._convert import (
    job_to_proto,
    new_job_id,
    page_token,
    parse_page_token,
)
from workmesh.services.gateway._feeds import JobFeeds
from workmesh.services.gateway._list_jobs import list_selectors, within_scope
from workmesh.services.gateway._queue_service import (
    QueueServiceMixin,
    check_queue_limits,
    owner_fields,
    owner_labels,
    set_owner_fields,
)
from workmesh.services.gateway._queue_watch import QueueWatch
from workmesh.services.gateway._readers import series_reader
from workmesh.services.gateway._retry import MAX_KEY_LENGTH, retry_job
from workmesh.services.gateway._runjobs import RunJobsStream
from workmesh.services.gateway._step_access import StepAccess
from workmesh.services.gateway._step_stream import serve_steps
from workmesh.services.gateway._steps import StepLimits, Steps, cascade
from workmesh.services.gateway._watch import Watches
from workmesh.services.gateway.discovery._catalog import Catalog
from workmesh.services.gateway.discovery._versions import VERSION_LABEL, parse_requirement, version_of
from workmesh.services.gateway.dispatch._dispatcher import Dispatcher
from workmesh.services.gateway.dispatch._policy import effective_max_attempts
from workmesh.services.gateway.notify import NotifyConfig, request_targets
from workmesh.services.gateway.store import AuditLog, JobRecord, JobStore
from workmesh.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc
from workmesh.workers.params import validate_params

log = logging.getLogger("workmesh.gateway")

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
LIST_PAGE_BYTES = 3 * 1024 * 1024  # below gRPC's default 4 MiB receive limit of clients
# Longer than any computation this platform is for; every deadline computed from it stays a
# valid datetime and Timestamp.
MAX_TIMEOUT_SECONDS = 366 * 86400
_VALID_STATUSES = frozenset(v for v in common_pb2.JobStatus.values() if v != common_pb2.JOB_STATUS_UNSPECIFIED)


def _timeout_seconds(timeout) -> float | None:
    """A job timeout in seconds (None for zero), checked: a valid Duration, ≥ 0, ≤ MAX_TIMEOUT."""
    if timeout.seconds < 0 or timeout.nanos < 0:
        raise InvalidArgument("timeout", "must not be negative")
    if timeout.nanos > 999_999_999:
        raise InvalidArgument("timeout", "nanos must be at most 999999999")
    if timeout.seconds > MAX_TIMEOUT_SECONDS:
        raise InvalidArgument("timeout", f"must be at most {MAX_TIMEOUT_SECONDS // 86400} days")
    return timeout.seconds + timeout.nanos / 1e9 or None


def _unary(method):
    """Turn WorkmeshErrors raised by a unary handler into their gRPC status."""

    @functools.wraps(method)
    async def wrapper(self, request, context):
        try:
            return await method(self, request, context)
        except WorkmeshError as exc:
            await abort(context, exc)

    return wrapper


def _job_id(request) -> str:
    if not request.job_id:
        raise InvalidArgument("job_id", "must not be empty")
    return request.job_id


class GatewayServicer(QueueServiceMixin, gateway_pb2_grpc.GatewayServicer):
    """Implements workmesh.v1.Gateway.

    Args:
        store: the job store.
        catalog: the live workflow types.
        dispatcher: queues and runs the jobs.
        delete_series: ``async (job_id)`` deleting a job's series before DeleteJob removes the
            job (e.g. a :class:`SeriesCleaner`); None: no results service to clean.
        watch_idle: seconds a WatchJob stream waits for an event before checking the job again.
        max_message_bytes: the server's largest message; a ListJobs page stays within half of it
            (and within ``LIST_PAGE_BYTES``).
        notify: the notification channels and tenant defaults; None: jobs cannot ask for any.
    """

    def __init__(
        self,
        store: JobStore,
        catalog: Catalog,
        dispatcher: Dispatcher,
        *,
        watch_idle: float = 30.0,
        delete_series=None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        notify: NotifyConfig | None = None,
        step_limits: StepLimits | None = None,
        step_access: StepAccess | None = None,
    ) -> None:
        self._notify = notify
        self._page_bytes = min(LIST_PAGE_BYTES, max_message_bytes // 2)
        self._delete_series = delete_series
        self._store = store
        self._audit = store if isinstance(store, AuditLog) else None  # the store's audit log
        self._grants = store if isinstance(store, GrantStore) else None  # sharing
        self._catalog = catalog
        self._dispatcher = dispatcher
        self._watch_idle = watch_idle
        self._queue_watch = QueueWatch(dispatcher.queue, self._versions)
        self._feeds = JobFeeds(store, watch_idle)
        self._watches = Watches(store, self._feeds, self._queue_watch, self._grants)
        self._steps = Steps(
            store,
            self.store_job,
            lambda name, params: validate_params(self._workflow_type(name).params, params),
            step_limits or StepLimits(),
            watch_idle=watch_idle,
            access=step_access,
        )
        dispatcher.follow_rollups(self._steps.rollup)  # a workflow's end carries its last roll-up
        dispatcher.follow_ends(self._steps.ends)  # a step's end is answered from memory

    _check_params = staticmethod(lambda wf, params: validate_params(wf.params, params))

    def _workflow_type(self, name: str):
        """The declaration of a known type (SubmitJob and EstimateJob alike).

        Raises:
            NotFound: no such type (or forgotten), naming the available ones.
        """
        wf = self._catalog.known_type(name)
        if wf is None:
            available = ", ".join(self._catalog.type_names()) or "none (no worker is registered)"
            retention = self._catalog.forgotten(name)
            why = (
                f": no worker has served it for more than {retention:g}s (WORKMESH_TYPE_RETENTION), so it was forgotten"
                if retention is not None
                else ""
            )
            raise NotFound(f"workflow_type: unknown type {name!r}{why}; available types: {available}")
        return wf

    def _declaration(self, name: str, version: str) -> tuple[common_pb2.WorkflowType, str]:
        """The declaration a job's params are checked against, and the requirement stored with it.

        Raises:
            InvalidArgument: `version` is no requirement. NotFound: unknown type, or no version
                of it matching was live or seen.
        """
        requirement = parse_requirement(version)  # names the field "version"
        wf = self._workflow_type(name)
        if not requirement:
            # The newest version live now, or any newer one (a rolling upgrade must not strand it).
            return wf, (f">={wf.version}" if version_of(wf.version) is not None else "")
        matching = self._catalog.declaration(name, requirement)
        if matching is None:
            live = ", ".join(sorted(self._catalog.live_versions(name))) or "none"
            raise NotFound(f"version: no version of {name!r} matching {version!r} is known; live versions: {live}")
        return matching, requirement.text

    @_unary
    async def ListWorkflowTypes(self, request, context):
        require_scope(TYPES_READ)
        infos = self._catalog.infos()
        model = self._dispatcher.queue.model
        for info in infos:
            typical = model.typical(info.type.name)
            if typical.p50_s is not None:  # known
                info.typical_runtime.FromNanoseconds(int(typical.p50_s * 1e9))
                info.runtime_runs = typical.runs
        return gateway_pb2.ListWorkflowTypesResponse(types=infos)

    async def WatchWorkflowTypes(self, request, context):
        try:
            require_scope(TYPES_READ)
        except WorkmeshError as exc:
            await abort(context, exc)
        queue = self._catalog.subscribe()
        try:
            while True:
                yield await queue.get()
        finally:
            self._catalog.unsubscribe(queue)

    @_unary
    async def SubmitJob(self, request, context):
        return await self.submit(request, context)

    async def submit(self, request, context):
        """SubmitJob's body (RunJobs' too)."""
        stored, created = await self.store_job(request, context)
        # The client has the parameters it sent: big ones are not echoed back (see ListJobs).
        return gateway_pb2.SubmitJobResponse(
            job=set_owner_fields(job_to_proto(stored, list_view=True)), existing=not created
        )

    async def store_job(
        self, request, context, *, parent: str = "", step_name: str = "", key: str | None = None, fresh: bool = False
    ) -> tuple[JobRecord, bool]:
        """Check, store and dispatch a submitted job: the stored job, and whether it is new (an
        idempotency key may find an earlier one). With `parent`, a step of that job (see
        ``_steps.py``) stored under `key` (`fresh`: expected new, see ``Dispatcher.admit``).

        A step is not held to its owner's queued-job limit: its parent runs already, and
        refusing its step would fail a workflow half way (steps are bounded per job instead).
        """
        require_scope(JOBS_SUBMIT)  # before any check of the request: the answer does not depend on it
        name = request.workflow_type
        if not name:
            raise InvalidArgument("workflow_type", "must not be empty")
        timeout_s = None
        if request.HasField("timeout"):
            timeout_s = _timeout_seconds(request.timeout)
        if len(request.idempotency_key) > MAX_KEY_LENGTH:
            raise InvalidArgument("idempotency_key", f"must be at most {MAX_KEY_LENGTH} characters")
        wf, requirement = self._declaration(name, request.version)
        params = validate_params(wf.params, request.params)
        owner, priority = owner_fields(request, context)
        labels = owner_labels(request.labels, owner, priority)
        if requirement:
            labels[VERSION_LABEL] = requirement
        dispatcher = self._dispatcher
        if not parent:
            key = owned_key(request.idempotency_key) or None
        try:
            if not parent:
                check_queue_limits(dispatcher.queue, owner)
        except ResourceExhausted:
            # A resubmit of a job that exists (a client retrying after a lost reply) is not a
            # new job: it gets that job, as below, even with the owner at its queued limit.
            earlier = await self._store.get_by_key(key) if key else None
            if earlier is None:
                raise
            return earlier, False
        # The job's owner's tenant (authenticated, once identity lands) picks the defaults.
        notify = request_targets(request, self._notify, owner.tenant)
        if timeout_s is None and wf.HasField("default_timeout"):
            timeout_s = (wf.default_timeout.seconds + wf.default_timeout.nanos / 1e9) or None
        job_id = new_job_id()
        # The job's trace starts here; its traceparent is stored so that every attempt (on any
        # replica, after any restart) and the worker's spans join it.
        with job_span("job.submit", job_id=job_id, workflow_type=name, bind_logs=False):
            trace_parent = current_traceparent()
            leased_at = time.monotonic()  # the lease below lasts at least lease_seconds from here
            record = JobRecord(
                job_id=job_id,
                workflow_type=name,
                params=params,
                timeout_s=timeout_s,
                max_attempts=effective_max_attempts(wf.max_attempts),
                labels=labels,
                idempotency_key=key,
                trace_parent=trace_parent,
                trace_id=current_trace_id(),
                lease_owner=dispatcher.replica_id,
                lease_until=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=dispatcher.lease_seconds),
                notify=notify,
                audit=audit_entry("submit", job_id, context),  # stored with the job
                parent_id=parent,
                step_name=step_name,
            )
            stored, created = await dispatcher.admit(record, leased_at, fresh=fresh and bool(parent))
        return stored, created

    async def WatchJob(self, request, context):
        try:  # writes the bytes the job's feed serialized (services/gateway/_watch.py)
            await self._watches.write(context, _job_id(request), request)
        except WorkmeshError as exc:
            await abort(context, exc)

    async def watch_batches(self, request, context=None):
        """WatchJob's events, in the lists they become available in (the HTTP API writes each
        list at once).

        Raises:
            WorkmeshError: as WatchJob's status (bad request, unknown or deleted job).
        """
        async for batch in self._watches.entries(
            _job_id(request), request.after_seq, request.queue_updates, request.latest_progress
        ):
            yield [entry.event() for entry in batch]

    @_unary
    async def GetJob(self, request, context):
        job_id = _job_id(request)
        # The scope first, then the job (visible_job): the answer to a caller without jobs:read
        # is the same for a job that exists and one that does not.
        record = await visible_job(self._store.get, job_id, READ, self._grants) or await self._store.get(job_id)
        if record is None:
            raise NotFound(f"job_id: no job {job_id!r}")
        job = set_owner_fields(job_to_proto(record), self._dispatcher.queue, self._versions())
        if job.HasField("queue"):
            job.queue.waiting = self._dispatcher.waiting(job_id)
        for attempt in await self._store.attempts(job_id):
            item = job.attempt_history.add(
                attempt=attempt.attempt, instance_id=attempt.instance_id, outcome=attempt.outcome, reason=attempt.reason
            )
            item.started_at.FromDatetime(attempt.started_at)
            if attempt.ended_at is not None:
                item.ended_at.FromDatetime(attempt.ended_at)
        return job

    @_unary
    async def ListJobs(self, request, context):
        size = request.page_size
        if size < 0 or size > MAX_PAGE_SIZE:
            raise InvalidArgument("page_size", f"must be between 0 and {MAX_PAGE_SIZE} (0 means {DEFAULT_PAGE_SIZE})")
        size = size or DEFAULT_PAGE_SIZE
        for status in request.statuses:
            if status not in _VALID_STATUSES:
                raise InvalidArgument("statuses", f"{status} is not a known job status")
        labels, parent_id = list_selectors(request)
        after = parse_page_token(request.page_token)
        identity = current_identity()
        shared = None
        if request.shared and identity is not None and self._grants is not None:
            shared = await self._grants.grants_to(identity.tenant, identity.subject, identity.groups)
        keep = list_filter(request.tenant_wide, request.all_tenants, shared)
        scoped = within_scope(
            labels, identity, tenant_wide=request.tenant_wide, all_tenants=request.all_tenants, shared=bool(shared)
        )
        if scoped is None:
            return gateway_pb2.ListJobsResponse()

        def list_page(limit, after):
            return self._store.list_jobs(
                workflow_type=request.workflow_type or None,
                statuses=tuple(request.statuses),
                limit=limit,
                after=after,
                labels=scoped,
                parent_id=parent_id,
            )

        records, resume = await scan_visible(list_page, keep, size + 1, after)
        # Big parameter values (an ESDL file of tens of MB) are left out of list views, and a
        # page ends early rather than growing past what a client with gRPC's default limit
        # (4 MiB) can receive.
        queue, versions = self._dispatcher.queue, self._versions()
        jobs: list[gateway_pb2.Job] = []
        total = 0
        for record in records[:size]:
            job = set_owner_fields(job_to_proto(record, list_view=True), queue, versions)
            if job.HasField("queue"):
                job.queue.waiting = self._dispatcher.waiting(record.job_id)
            total += job.ByteSize() + 16  # + the field's tag and length
            if jobs and total > self._page_bytes:
                break
            jobs.append(job)
        token = page_token(jobs[-1].job_id) if len(records) > len(jobs) else ""
        if resume is not None and len(jobs) == len(records):
            token = page_token(resume)  # the scan stopped before the end of the caller's jobs
        return gateway_pb2.ListJobsResponse(jobs=jobs, next_page_token=token)

    @_unary
    async def RunStep(self, request, context):
        return await self._steps.run(request, context)

    async def RunSteps(self, request_iterator, context):
        try:
            await serve_steps(self._steps.run, request_iterator, context)
        except WorkmeshError as exc:
            await abort(context, exc)

    @_unary
    async def CancelJob(self, request, context):
        await visible_job(self._store.get, _job_id(request), MANAGE, self._grants)
        record = await self._dispatcher.cancel(_job_id(request), request.reason)
        why = f"its parent job {record.job_id} was cancelled"

        async def cancel_step(child: JobRecord) -> None:
            if not child.terminal:
                with contextlib.suppress(NotFound, FailedPrecondition):  # ended or deleted meanwhile
                    await self._dispatcher.cancel(child.job_id, why)

        await cascade(self._store, record.job_id, cancel_step)
        await record_action(self._audit, "cancel", record.job_id, context, request.reason)
        return set_owner_fields(job_to_proto(record))

    @_unary
    async def DeleteJob(self, request, context):
        job_id = _job_id(request)
        await visible_job(self._store.get, job_id, MANAGE, self._grants)

        async def delete_step(child: JobRecord) -> None:
            self._steps.forget(child.job_id)
            await self._dispatcher.delete(child.job_id, self._delete_series)

        await cascade(self._store, job_id, delete_step)  # a workflow goes with its steps
        record = await self._store.get(job_id)
        if record is not None and record.parent_id:
            self._steps.forget(record.parent_id)  # a step alone: its parent would run it again
        self._steps.forget(job_id)
        if not await self._dispatcher.delete(job_id, self._delete_series):
            raise NotFound(f"job_id: no job {job_id!r}")
        if self._grants is not None:  # its shares go with it (label shares stay: other jobs)
            for grant in await self._grants.list_grants(job_id=job_id):
                await self._grants.delete_grant(grant.grant_id)
        await record_action(self._audit, "delete", job_id, context)
        return gateway_pb2.DeleteJobResponse()

    @_unary
    async def GrantSeriesReader(self, request, context):
        return await series_reader(self, request, context, revoke=False)

    @_unary
    async def RevokeSeriesReader(self, request, context):
        return await series_reader(self, request, context, revoke=True)

    @_unary
    async def EstimateJob(self, request, context):
        require_scope(JOBS_SUBMIT)  # an estimate is a submit that is not made
        return await self._estimate(request, context)

    @_unary
    async def GetQueue(self, request, context):
        return await self._queue_view(request)

    @_unary
    async def RetryJob(self, request, context):
        return await retry_job(self, request, context)

    async def RunJobs(self, request_iterator, context):
        # Each item goes through SubmitJob itself (its unwrapped body, which raises
        # WorkmeshError instead of aborting the call): the same checks, defaults and dispatch.
        submit_job = GatewayServicer.SubmitJob.__wrapped__
        try:
            require_scope(JOBS_SUBMIT)
        except WorkmeshError as exc:
            await abort(context, exc)

        async def submit(request):
            return await submit_job(self, request, context)

        await RunJobsStream(self._store, submit, context, watch_idle=self._watch_idle).run()


class SeriesCleaner:
    """Deletes a job's series in the results service registered as ``workmesh-results``.

    No results service registered at all: nothing to delete. One registered but not passing
    (crashed, restarting), or one that cannot be reached, or an unreachable registry, raises
    Unavailable, and DeleteJob then answers UNAVAILABLE having
    deleted nothing but cancelling a running job, so that the client can retry — the series
    are never left behind unowned. With authentication on, the call carries a ``delete``
    capability for the job, signed as the attempts' write capabilities are.
    """

    def __init__(self, registry, tls=None, capabilities=None) -> None:
        self._registry = registry
        self._tls = tls  # the channel to the results service uses TLS when it has a CA
        self._capabilities = capabilities

    @property
    def capabilities(self):
        """The series capabilities it signs with (None with authentication off)."""
        return self._capabilities

    async def connect(self) -> ResultsClient:
        """A client of a passing results service; Unavailable when there is none."""
        instances = await find_service(self._registry, "workmesh-results")
        if not instances:
            raise Unavailable("no passing workmesh-results instance in the registry")
        return ResultsClient(f"{instances[0].address}:{instances[0].port}", timeout=15.0, tls=self._tls)

    async def __call__(self, job_id: str) -> None:
        instances = await find_service(self._registry, "workmesh-results")
        if not instances:
            if await find_service(self._registry, "workmesh-results", passing=False):
                raise Unavailable(
                    f"the results service is registered but not passing; the series of job "
                    f"{job_id} were not deleted and the job was kept, retry DeleteJob"
                )
            return
        inst = instances[0]
        address = f"{inst.address}:{inst.port}"
        client = ResultsClient(address, timeout=5.0, tls=self._tls)
        try:
            capability = ""
            if self._capabilities is not None:
                capability = self._capabilities.deleting(job_id)
            await client.delete(job_id, capability=capability)
        except NotFound:
            return
        except WorkmeshError as exc:
            raise Unavailable(
                f"results service at {address} could not delete the series of job {job_id} "
                f"({exc}); the job was kept, retry DeleteJob"
            ) from exc
        finally:
            await client.close()
