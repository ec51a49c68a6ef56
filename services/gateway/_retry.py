"""RetryJob: an ended job runs again as a new attempt of the same job (issue 13).

The job keeps its id, its events (numbered on: a QUEUED event with the reason ``RETRIED`` follows
the terminal one) and its attempt history; its result, error and progress are cleared and it
gets a fresh attempt budget (its attempts so far plus the type's ``max_attempts``). Its steps'
child jobs are found by (job, step name) over every attempt, so the steps that succeeded are
reused and only the failed or cancelled ones run again. A succeeded job is not retried
(FAILED_PRECONDITION): nothing failed. An idempotency key makes the call safe to repeat: the
key of the retry that reopened the job is kept in its label ``workmesh.retry_key``, and the same
key again returns the job as it is (``existing``), whatever its state.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time

from workmesh.services.core.auth import JOBS_SUBMIT, require_scope
from workmesh.services.core.errors import InvalidArgument, NotFound, Unavailable
from workmesh.services.gateway._access import MANAGE, visible_job
from workmesh.services.gateway._audit import record_action
from workmesh.services.gateway._convert import job_to_proto
from workmesh.services.gateway._queue_service import check_queue_limits, set_owner_fields
from workmesh.services.gateway.dispatch._attempt import status_event
from workmesh.services.gateway.dispatch._jobqueue import owner_of
from workmesh.services.gateway.dispatch._policy import effective_max_attempts
from workmesh.services.gateway.store import REOPENABLE, Reopen, reopen_refusal
from workmesh.v1 import common_pb2, gateway_pb2

RETRY_KEY_LABEL = "workmesh.retry_key"
MAX_KEY_LENGTH = 256


async def _wound_down(dispatcher, job_id: str, patience: float = 5.0) -> None:
    """Wait until the dispatcher has let go of the ended job (its last attempt's records are
    written just after its terminal status), so that the reopened job is queued afresh.

    Raises:
        Unavailable: it did not let go within `patience` seconds (retry the call).
    """
    give_up = time.monotonic() + patience
    while dispatcher.driving(job_id):
        if time.monotonic() > give_up:
            raise Unavailable(f"job_id: job {job_id!r} is still winding down its last attempt; retry in a moment")
        await asyncio.sleep(0.02)


async def retry_job(servicer, request: gateway_pb2.RetryJobRequest, context=None) -> gateway_pb2.SubmitJobResponse:
    """RetryJob's body (see the module docstring); `servicer` is the GatewayServicer.

    Raises:
        NotFound: no such job (or one of another tenant).
        PermissionDenied: the caller may not manage the job, or lacks ``jobs:submit``.
        FailedPrecondition: the job has not ended, or it succeeded.
        InvalidArgument: an empty job id, a key too long.
        ResourceExhausted: the owner's queued-job limit.
    """
    require_scope(JOBS_SUBMIT)
    job_id = request.job_id
    if not job_id:
        raise InvalidArgument("job_id", "must not be empty")
    if len(request.idempotency_key) > MAX_KEY_LENGTH:
        raise InvalidArgument("idempotency_key", f"must be at most {MAX_KEY_LENGTH} characters")
    store, dispatcher = servicer._store, servicer._dispatcher
    await visible_job(store.get, job_id, MANAGE, servicer._grants)
    record = await store.get(job_id)
    if record is None:
        raise NotFound(f"job_id: no job {job_id!r}")
    key = request.idempotency_key
    if key and record.labels.get(RETRY_KEY_LABEL) == key:
        return gateway_pb2.SubmitJobResponse(job=set_owner_fields(job_to_proto(record, list_view=True)), existing=True)
    if record.status not in REOPENABLE:
        raise reopen_refusal(job_id, record.status)
    if not record.parent_id:
        check_queue_limits(dispatcher.queue, owner_of(record.labels))
    await _wound_down(dispatcher, job_id)
    declared = servicer._catalog.known_type(record.workflow_type)
    budget = effective_max_attempts(declared.max_attempts if declared is not None else 0)
    labels = dict(record.labels)
    if key:
        labels[RETRY_KEY_LABEL] = key
    else:
        labels.pop(RETRY_KEY_LABEL, None)
    attempt = record.attempts + 1
    was = common_pb2.JobStatus.Name(record.status).removeprefix("JOB_STATUS_")
    event = status_event(common_pb2.JOB_STATUS_QUEUED, f"RETRIED: attempt {attempt} after {was} (RetryJob)")
    leased_at = time.monotonic()  # the lease below lasts at least lease_seconds from here
    reopened = await store.reopen(
        job_id,
        event,
        Reopen(
            max_attempts=record.attempts + budget,
            labels=labels,
            lease_owner=dispatcher.replica_id,
            lease_until=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=dispatcher.lease_seconds),
        ),
    )
    dispatcher.submitted(reopened, leased_at)
    await record_action(servicer._audit, "retry", job_id, context, f"attempt {attempt} after {was}")
    return gateway_pb2.SubmitJobResponse(job=set_owner_fields(job_to_proto(reopened, list_view=True)))
