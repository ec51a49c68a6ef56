"""What RunStep keeps in memory per running parent attempt, so a step costs few store reads.

On the first RunStep of a parent's attempt the gateway reads the parent and all its child jobs
once (:meth:`JobStore.children`, one query) and keeps, per step name, the child that succeeded
(in any attempt: reused from then on without a read) and the child of an earlier attempt still
running (awaited, not duplicated). Later steps of that attempt check the parent with ``peek``
(from memory on the gateway's own SQLite store) instead of reading it. What this process
creates or sees end joins the entry. Nothing here decides alone: a child not in the entry is
made by the store's find-or-create on the step's key, so a step another replica made, or a
repeated call, is found there. Bounded: the least recently used parents are dropped.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from workmesh.services.gateway.store import JobRecord
from workmesh.v1 import common_pb2

MAX_PARENTS = 2000


@dataclass
class ParentSteps:
    """One parent attempt's steps as this gateway knows them.

    Attributes:
        attempt: the parent's attempt this entry is for.
        labels: the parent's labels (its owner and priority: those of its steps).
        depth: how many jobs are above a step of this parent.
        count: the parent's child jobs (over all its attempts), for WORKMESH_MAX_STEPS.
        done: the succeeded child of each step name.
        earlier: per step name, a child of an earlier attempt that had not ended when read.
        asked: the step names this attempt has a child for, as far as this gateway knows (read,
            or created here): any other is created as new (``Dispatcher.admit``'s `fresh`), the
            store's key still deciding.
    """

    attempt: int
    labels: dict[str, str]
    depth: int
    count: int
    done: dict[str, JobRecord] = field(default_factory=dict)
    earlier: dict[str, JobRecord] = field(default_factory=dict)
    asked: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, parent: JobRecord, attempt: int, depth: int, children: list[JobRecord]) -> ParentSteps:
        """The entry of `parent`'s `attempt` from its children (oldest first)."""
        entry = cls(attempt=attempt, labels=dict(parent.labels), depth=depth, count=len(children))
        own = f":{attempt}"
        for child in children:
            if child.status == common_pb2.JOB_STATUS_SUCCEEDED:
                entry.done.setdefault(child.step_name, child)
            elif not child.terminal and not (child.idempotency_key or "").endswith(own):
                entry.earlier[child.step_name] = child
            if (child.idempotency_key or "").endswith(own):
                entry.asked.add(child.step_name)
        return entry


class StepCache:
    """:class:`ParentSteps` by parent job id, least recently used dropped past `max_parents`."""

    def __init__(self, max_parents: int = MAX_PARENTS) -> None:
        self._parents: collections.OrderedDict[str, ParentSteps] = collections.OrderedDict()
        self._max = max_parents

    def get(self, parent_id: str, attempt: int) -> ParentSteps | None:
        """The entry of that attempt, or None (none kept, or one of another attempt)."""
        entry = self._parents.get(parent_id)
        if entry is None or entry.attempt != attempt:
            return None
        self._parents.move_to_end(parent_id)
        return entry

    def put(self, parent_id: str, entry: ParentSteps) -> None:
        self._parents[parent_id] = entry
        self._parents.move_to_end(parent_id)
        while len(self._parents) > self._max:
            self._parents.popitem(last=False)

    def forget(self, job_id: str) -> None:
        """Drop what is kept for `job_id` as a parent (it or one of its steps was deleted)."""
        self._parents.pop(job_id, None)
