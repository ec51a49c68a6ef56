"""Conversions between stored jobs and the public messages, job ids and page tokens."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
import time
from typing import cast

from workmesh.services.core.errors import InvalidArgument
from workmesh.services.gateway.store import JobRecord
from workmesh.v1 import common_pb2, gateway_pb2

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_TOKEN_PREFIX = b"after:"
LIST_PARAM_BYTES = 64 * 1024  # a parameter value bigger than this is left out of list views


def new_job_id() -> str:
    """A new job id: 13 hex digits of microseconds since the epoch + 8 random hex digits.

    Ids sort by creation time (useful for SQL indexes and paging) and do not collide between
    gateway replicas.
    """
    return f"{time.time_ns() // 1000:013x}{os.urandom(4).hex()}"


def _set_time(ts, value: dt.datetime | None) -> None:
    if value is not None:
        # Cheaper than Timestamp.FromDatetime, which goes through timetuple().
        delta = value - _EPOCH if value.tzinfo is not None else value - _EPOCH.replace(tzinfo=None)
        ts.seconds = delta.days * 86400 + delta.seconds
        ts.nanos = delta.microseconds * 1000


def job_to_proto(record: JobRecord, list_view: bool = False) -> gateway_pb2.Job:
    """The public Job message of a stored job; a `list_view` leaves big parameter values out
    (named in ``omitted_params``)."""
    params = record.params
    omitted: list[str] = []
    if list_view and params:
        omitted = sorted(name for name, value in params.items() if value.ByteSize() > LIST_PARAM_BYTES)
        if omitted:
            params = {name: value for name, value in params.items() if name not in omitted}
    job = gateway_pb2.Job(
        job_id=record.job_id,
        workflow_type=record.workflow_type,
        params=params,
        status=cast(common_pb2.JobStatus, record.status),  # protoc's .pyi: the enum type, not its int
        attempts=record.attempts,
        last_seq=record.last_seq,
        trace_id=record.trace_id,
        labels=record.labels,
        instance_id=record.instance_id,
        omitted_params=omitted,
        parent_id=record.parent_id,
        step_name=record.step_name,
    )
    _set_time(job.created_at, record.created_at)
    _set_time(job.updated_at, record.updated_at)
    _set_time(job.started_at, record.started_at)
    _set_time(job.finished_at, record.finished_at)
    if record.progress is not None:
        job.progress.CopyFrom(record.progress)
    if record.result is not None:
        job.result.CopyFrom(record.result)
    if record.error is not None:
        job.error.CopyFrom(record.error)
    return job


def page_token(job_id: str) -> str:
    """The opaque token of the page that follows the job `job_id`."""
    return base64.urlsafe_b64encode(_TOKEN_PREFIX + job_id.encode()).decode().rstrip("=")


def parse_page_token(token: str) -> str | None:
    """The job id a page token continues after; None for an empty token.

    Raises:
        InvalidArgument: the token was not made by :func:`page_token`.
    """
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if not raw.startswith(_TOKEN_PREFIX) or len(raw) == len(_TOKEN_PREFIX):
        raise InvalidArgument("page_token", "must be a next_page_token returned by ListJobs")
    try:
        return raw[len(_TOKEN_PREFIX) :].decode()
    except UnicodeDecodeError:
        raise InvalidArgument("page_token", "must be a next_page_token returned by ListJobs") from None
