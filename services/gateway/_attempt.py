"""What the dispatcher keeps per job and per attempt, and the job events it writes."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field

from workmesh.services.gateway._catalog import InstanceState
from workmesh.v1 import common_pb2, worker_pb2

S = common_pb2


def utcnow() -> dt.datetime:
    """Now, timezone-aware (UTC)."""
    return dt.datetime.now(dt.UTC)


def status_event(status: int, reason: str = "", attempt: int = 0, instance_id: str = "") -> S.JobEvent:
    """A job event announcing a status change."""
    return S.JobEvent(status=S.StatusChange(status=status, reason=reason, attempt=attempt,
                                            instance_id=instance_id))


@dataclass(eq=False)
class Pending:
    """A job the dispatcher owns until it is terminal: what it needs to (re)dispatch it."""

    job_id: str
    workflow_type: str
    request: worker_pb2.ExecuteRequest
    timeout_s: float | None
    max_attempts: int
    attempts: int = 0
    cancelled: bool = False
    timer: asyncio.TimerHandle | None = None  # backoff before the next attempt


@dataclass(eq=False)
class Attempt:
    """One running attempt of a job on one instance."""

    job: Pending
    inst: InstanceState
    number: int
    task: asyncio.Task | None = None
    call: object | None = None
    stop_status: int = 0            # CANCELLED or TIMED_OUT once the gateway asked it to stop
    stop_reason: str = ""
    outcome: str = "LOST"           # how it ended, for the store's attempt record
    outcome_reason: str = ""
    forced: bool = False
    worker_seq: int = 0             # last WorkerEvent seq consumed (where an Attach would resume)
    timers: list[asyncio.TimerHandle] = field(default_factory=list)


class Lost(Exception):
    """The attempt ended without an outcome from the worker (connection, stream, overload)."""
