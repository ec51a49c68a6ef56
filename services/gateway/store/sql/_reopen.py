"""RetryJob's write in the SQL store: an ended job made QUEUED again for a new attempt.

One conditional UPDATE (``status IN (FAILED, CANCELLED, TIMED_OUT)``) is the whole decision, so
two replicas retrying the same job at once reopen it once: the loser finds it QUEUED and is
refused. The QUEUED event is numbered after the job's last one, in the same transaction.
"""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa

from workmesh.services.core.errors import NotFound
from workmesh.services.gateway.store import REOPENABLE, JobRecord, Reopen, reopen_refusal
from workmesh.services.gateway.store.sql._ops import Batch, read_job
from workmesh.services.gateway.store.sql._schema import jobs
from workmesh.v1 import common_pb2

_REOPEN = (
    sa.update(jobs)
    .where(jobs.c.job_id == sa.bindparam("_job_id"), jobs.c.status.in_(REOPENABLE))
    .values(
        last_seq=jobs.c.last_seq + 1,
        status=common_pb2.JOB_STATUS_QUEUED,
        finished_at=None,
        not_before=None,
        result=None,
        error=None,
        progress=None,
        worker_seq=0,
    )
    .returning(jobs.c.last_seq)
)


@dataclasses.dataclass
class ReopenJob:
    """Reopen `job_id` with `event` (see JobStore.reopen)."""

    job_id: str
    event: common_pb2.JobEvent
    reopen: Reopen

    def run(self, conn: sa.Connection, batch: Batch) -> JobRecord:
        reopen = self.reopen
        row = conn.execute(
            _REOPEN,
            {
                "_job_id": self.job_id,
                "updated_at": batch.now,
                "max_attempts": reopen.max_attempts,
                "labels": dict(reopen.labels),
                "lease_owner": reopen.lease_owner,
                "lease_until": reopen.lease_until,
            },
        ).first()
        if row is None:
            status = conn.execute(sa.select(jobs.c.status).where(jobs.c.job_id == self.job_id)).scalar()
            if status is None:
                raise NotFound(f"job_id: no job {self.job_id!r}")
            raise reopen_refusal(self.job_id, status)
        event = self.event
        event.seq = row.last_seq
        batch.add_event(self.job_id, event, now=batch.stamp(event))
        batch.touched[self.job_id] = row.last_seq
        record = read_job(conn, self.job_id)
        assert record is not None  # updated just now, in this transaction
        return record
