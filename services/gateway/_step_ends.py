"""The ends of the step jobs RunStep awaits, from the dispatcher instead of the store (issue 13).

A sequential step is a whole job after another, so each store round trip counts: profiled in
``workmesh bench steps``, reading the ended child's record back (a reader thread, SQLAlchemy,
the row's conversion) was the largest single cost of a step, and the parent's "step ended" a
commit of its own. The child's terminal write is the dispatcher's (``Outcomes.finish``), which
tells :class:`StepEnds` twice:

- before it submits the write (:meth:`StepEnds.ending`): the parent's "step ended" event is
  returned and submitted in the same loop turn, so it shares the child's terminal transaction;
- once the write is committed (:meth:`StepEnds.ended`): the child's record as it ended is the
  record as it was created plus the terminal update. That is exact when the update carries
  everything that changed since the dispatch, which holds when the child's RUNNING shares the
  terminal write (a short step: no progress, no other write in between) — ``updated_at`` is
  then taken as the end's time (the commit's clock reading, microseconds apart). In any other
  case (a longer child, a terminal write that was not committed, an end written elsewhere) the
  record is read from the store, as before. Only a first attempt qualifies (a retry's requeue
  changed the row too).

Only the children this process created and awaits are tracked; nothing here decides anything
that the store does not also hold.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from workmesh.services.gateway.store import JobRecord, JobUpdate
from workmesh.v1 import common_pb2

_K = common_pb2.StepEvent


def step_ended_event(name: str, child_id: str, workflow_type: str, status: int, error: common_pb2.JobError | None):
    """The parent's event for a step whose child ended with `status` (and `error`)."""
    ok = status == common_pb2.JOB_STATUS_SUCCEEDED
    return common_pb2.JobEvent(
        step=_K(
            kind=_K.KIND_SUCCEEDED if ok else _K.KIND_FAILED,
            step_name=name,
            child_job_id=child_id,
            workflow_type=workflow_type,
            child_status=status,  # type: ignore[arg-type]
            message="" if ok or error is None else f"{error.code}: {error.message}",
        )
    )


@dataclasses.dataclass(eq=False)
class _Child:
    record: JobRecord  # as created
    writes: int = 0  # terminal writes submitted and not yet committed (or failed)
    told: int | None = None  # the child status the parent's "step ended" event was written with
    end: JobRecord | None = None  # the record as it ended, when known exactly
    waiter: asyncio.Future[None] | None = None


class StepEnds:
    """The step children being awaited, and what the dispatcher said of their ends.

    Args:
        poke: told of the parent whose step ended (its progress roll-up is due).
    """

    def __init__(self, poke: Callable[[str], None]) -> None:
        self._children: dict[str, _Child] = {}
        self._poke = poke

    def expect(self, record: JobRecord) -> None:
        """A step's child job was just created (`record`, as stored) and will be awaited."""
        self._children[record.job_id] = _Child(record)

    def forget(self, job_id: str) -> None:
        """Stop tracking `job_id` (its RunStep returned or went away)."""
        self._children.pop(job_id, None)

    # -- the dispatcher's side (EndListener) --------------------------------------------------

    def ending(
        self, job_id: str, status: int, error: common_pb2.JobError | None
    ) -> list[tuple[str, common_pb2.JobEvent]]:
        """The child's terminal write is about to go: the parent's "step ended" event goes with it."""
        child = self._children.get(job_id)
        if child is None:
            return []
        child.writes += 1
        child.told = status
        record = child.record
        self._poke(record.parent_id)
        return [(record.parent_id, step_ended_event(record.step_name, job_id, record.workflow_type, status, error))]

    def ended(self, job_id: str, update: JobUpdate | None, last_seq: int, attempts: int) -> None:
        """The terminal write was committed with `update` (None: not committed)."""
        child = self._children.get(job_id)
        if child is None or child.writes == 0:
            return
        child.writes -= 1
        # A first attempt whose RUNNING shares this write: nothing else changed the row since its dispatch.
        if update is not None and update.started_at is not None and attempts == 1 and update.status is not None:
            child.end = dataclasses.replace(
                child.record,
                params=dict(child.record.params),
                labels=dict(child.record.labels),
                status=update.status,
                started_at=update.started_at,
                finished_at=update.finished_at,
                updated_at=update.finished_at,
                instance_id=update.instance_id if update.instance_id is not None else child.record.instance_id,
                attempts=attempts,
                progress=update.progress,
                result=update.result,
                error=update.error,
                last_seq=last_seq,
                worker_seq=update.worker_seq if update.worker_seq is not None else 0,
                lease_owner=None,
                lease_until=None,
                notify=(),
                audit=None,
            )
        if child.writes == 0 and child.waiter is not None and not child.waiter.done():
            child.waiter.set_result(None)

    # -- RunStep's side -----------------------------------------------------------------------

    async def take(self, job_id: str) -> tuple[JobRecord | None, int | None]:
        """Once the child is terminal in the store: its record as it ended if known exactly
        (None: read it), and the status the parent's "step ended" event gave (None: not
        written). Waits for a terminal write of the dispatcher's still being committed."""
        child = self._children.get(job_id)
        if child is None:
            return None, None
        while child.writes > 0:
            if child.waiter is None or child.waiter.done():
                child.waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(child.waiter)  # shared: one caller going away leaves it to the others
        self._children.pop(job_id, None)
        return child.end, child.told
