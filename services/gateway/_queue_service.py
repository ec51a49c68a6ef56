"""The Gateway RPCs and checks of the scheduler: owners at submit, queue limits, queue places,
EstimateJob and GetQueue (a mixin of ``GatewayServicer``)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from typing import Any

from workmesh.services.core.errors import InvalidArgument, NotFound, ResourceExhausted
from workmesh.services.gateway._access import caller_owner, visible_tenant
from workmesh.services.gateway._shares import parse_priority
from workmesh.services.gateway.discovery._catalog import Catalog
from workmesh.services.gateway.discovery._versions import VERSION_LABEL
from workmesh.services.gateway.dispatch._dispatcher import Dispatcher
from workmesh.services.gateway.dispatch._fairshare import Owner, QueuedJob
from workmesh.services.gateway.dispatch._jobqueue import (
    PRIORITY_LABEL,
    TENANT_LABEL,
    USER_LABEL,
    priority_of,
)
from workmesh.v1 import common_pb2, gateway_pb2

__all__ = [
    "QueueServiceMixin",
    "check_queue_limits",
    "owner_fields",
    "owner_labels",
    "set_owner_fields",
    "submit_owner",
]

MAX_OWNER_LENGTH = 200
_RESERVED = (TENANT_LABEL, USER_LABEL, PRIORITY_LABEL, VERSION_LABEL)


def submit_owner(request, context=None) -> Owner:
    """The owner a SubmitJob (or EstimateJob) is accounted to: the one place that decides it.

    Fair share, limits and queue views key on what this returns: with authentication off, the
    request's declared ``tenant``/``user``; with it on, the caller's (tenant, subject), and a
    declared owner that differs from it is refused (see ``_access.caller_owner``).

    Raises:
        InvalidArgument: a declared name too long, or not the caller's own.
        PermissionDenied: the caller may not submit.
    """
    for name in ("tenant", "user"):
        if len(getattr(request, name)) > MAX_OWNER_LENGTH:
            raise InvalidArgument(name, f"must be at most {MAX_OWNER_LENGTH} characters")
    return caller_owner(Owner(request.tenant, request.user))


def owner_fields(request, context=None) -> tuple[Owner, int]:
    """The owner (see :func:`submit_owner`) and the priority of a SubmitJob/EstimateJob request, checked.

    Raises:
        InvalidArgument: a name too long, or an unknown priority.
    """
    owner = submit_owner(request, context)
    try:
        priority = parse_priority(request.priority)
    except ValueError as exc:
        raise InvalidArgument("priority", str(exc)) from None
    return owner, priority


def owner_labels(labels, owner: Owner, priority: int) -> dict[str, str]:
    """The job's labels with the reserved owner labels set from the request's fields."""
    for key in labels:
        if key in _RESERVED:
            raise InvalidArgument(f"labels[{key}]", "is reserved: set the request's tenant, user, priority or version")
    out = dict(labels)
    if owner.tenant:
        out[TENANT_LABEL] = owner.tenant
    if owner.user:
        out[USER_LABEL] = owner.user
    if priority:
        out[PRIORITY_LABEL] = str(priority)
    return out


def check_queue_limits(queue, owner: Owner) -> None:
    """Refuse a submit past the owner's or its tenant's queued limit.

    Raises:
        ResourceExhausted: naming the limit and the current count.
    """
    scheduler = queue.scheduler
    cap = scheduler.shares.user_limit(owner).max_queued
    if cap is not None and (n := scheduler.queued_count(owner)) >= cap:
        raise ResourceExhausted(
            f"max_queued of user {owner.user or '-'} in tenant {owner.tenant or '-'} is "
            f"{cap} and {n} jobs are queued; submit again when some have started"
        )
    cap = scheduler.shares.tenant_limit(owner.tenant).max_queued
    if cap is not None and (n := scheduler.queued_count(tenant=owner.tenant)) >= cap:
        raise ResourceExhausted(
            f"max_queued of tenant {owner.tenant or '-'} is {cap} and {n} jobs are "
            f"queued; submit again when some have started"
        )


def set_owner_fields(job: gateway_pb2.Job, queue=None, versions=None) -> gateway_pb2.Job:
    """Fill a Job message's tenant/user/priority (and queue place when queued here)."""
    labels = job.labels
    job.tenant, job.user, job.priority = labels.get(TENANT_LABEL, ""), labels.get(USER_LABEL, ""), priority_of(labels)
    job.version = labels.get(VERSION_LABEL, "")
    if queue is not None:
        place = queue.place(job.job_id, versions)
        if place is not None:
            position, queued, start = place
            job.queue.position, job.queue.queued = position, queued
            if start is not None:
                job.queue.expected_start.FromDatetime(dt.datetime.fromtimestamp(start, dt.UTC))
    return job


def _keep_tenant(owners, tenant: str) -> None:
    kept = [o for o in owners if o.tenant == tenant]
    del owners[:]
    owners.extend(kept)


def _seconds(duration, value: float) -> None:
    duration.FromNanoseconds(int(value * 1e9))


class QueueServiceMixin:
    """EstimateJob and GetQueue for ``GatewayServicer`` (which provides ``_catalog``, ``_dispatcher``,
    ``_workflow_type`` and ``_check_params``)."""

    # What the servicer provides (declared for the type checker; set or defined by GatewayServicer).
    _catalog: Catalog
    _dispatcher: Dispatcher
    _workflow_type: Callable[[str], common_pb2.WorkflowType]
    _check_params: Callable[[common_pb2.WorkflowType, Any], Any]

    def _versions(self) -> dict[str, str]:
        catalog = self._catalog
        return {name: wf.version for name in catalog.type_names() if (wf := catalog.known_type(name)) is not None}

    async def _estimate(self, request, context=None) -> gateway_pb2.EstimateJobResponse:
        name = request.workflow_type
        if not name:
            raise InvalidArgument("workflow_type", "must not be empty")
        wf = self._workflow_type(name)
        owner, priority = owner_fields(request, context)
        params = self._check_params(wf, request.params)
        version = request.version or wf.version
        queue = self._dispatcher.queue
        est = queue.estimate(name, version, params)
        out = gateway_pb2.EstimateJobResponse(
            workflow_type=name, version=version, runs=est.runs, basis=est.basis, reason=est.reason
        )
        p50 = est.p50_s  # None: unknown
        if p50 is not None:
            _seconds(out.runtime_p50, p50)
        if est.p90_s is not None:
            _seconds(out.runtime_p90, est.p90_s)
        probe = QueuedJob(f"estimate-{os.urandom(4).hex()}", name, owner, priority, queue.now(), seq=1 << 62)
        start, position = queue.estimate_start(probe, est.p50_s, self._versions())
        out.queue_position = position
        if start is not None:
            out.expected_start.FromDatetime(dt.datetime.fromtimestamp(start, dt.UTC))
            if p50 is not None:
                out.expected_finish.FromDatetime(dt.datetime.fromtimestamp(start + p50, dt.UTC))
        return out

    async def _queue_view(self, request) -> gateway_pb2.GetQueueResponse:
        tenant = visible_tenant()
        out = await self._whole_queue(request)
        if tenant is not None:
            # Another tenant's owners are not shown; the type totals (how busy a type is) are.
            _keep_tenant(out.owners, tenant)
            for tq in out.types:
                _keep_tenant(tq.owners, tenant)
        return out

    async def _whole_queue(self, request) -> gateway_pb2.GetQueueResponse:
        queue = self._dispatcher.queue
        scheduler = queue.scheduler
        now = queue.now()
        shares = scheduler.shares
        out = gateway_pb2.GetQueueResponse(policy=scheduler.policy, half_life_seconds=shares.half_life_s)
        queued: dict[str, dict[Owner, int]] = {}
        running: dict[str, dict[Owner, int]] = {}
        for job in scheduler.queued_jobs():
            by = queued.setdefault(job.workflow_type, {})
            by[job.owner] = by.get(job.owner, 0) + 1
        for run in scheduler.running_jobs():
            by = running.setdefault(run.workflow_type, {})
            by[run.owner] = by.get(run.owner, 0) + 1
        names = sorted({*queued, *running})
        if request.workflow_type:
            if request.workflow_type not in names and self._catalog.known_type(request.workflow_type) is None:
                raise NotFound(f"workflow_type: unknown type {request.workflow_type!r}")
            names = [request.workflow_type]
        usage = {o: scheduler.usage(o, now) for o in scheduler.owners()}
        total_usage = sum(usage.values()) or 1.0
        for o in sorted(usage):
            out.owners.add(
                tenant=o.tenant,
                user=o.user,
                queued=scheduler.queued_count(o),
                running=scheduler.running_count(o),
                tenant_weight=shares.tenant_weight(o.tenant),
                user_weight=shares.user_weight(o),
                usage_seconds=usage[o],
                share=usage[o] / total_usage,
            )
        capacity = queue.capacity()
        for name in names:
            owners = sorted({*queued.get(name, {}), *running.get(name, {})})
            tenants = {o.tenant for o in owners}
            tenant_total = sum(shares.tenant_weight(t) for t in tenants) or 1.0
            tq = out.types.add(
                workflow_type=name,
                capacity=capacity.get(name, 0),
                queued=sum(queued.get(name, {}).values()),
                running=sum(running.get(name, {}).values()),
            )
            for o in owners:
                peers = [p for p in owners if p.tenant == o.tenant]
                user_total = sum(shares.user_weight(p) for p in peers) or 1.0
                tq.owners.add(
                    tenant=o.tenant,
                    user=o.user,
                    queued=queued.get(name, {}).get(o, 0),
                    running=running.get(name, {}).get(o, 0),
                    tenant_weight=shares.tenant_weight(o.tenant),
                    user_weight=shares.user_weight(o),
                    weight=shares.tenant_weight(o.tenant) / tenant_total * shares.user_weight(o) / user_total,
                    usage_seconds=usage.get(o, 0.0),
                    share=usage.get(o, 0.0) / total_usage,
                )
        return out
