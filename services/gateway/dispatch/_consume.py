"""An attempt's worker stream turned into job events: progress and log batches, RUNNING held
back to share the commit of the event that came with it, the result or error as the terminal
write, and a broken stream told apart from a refused or failed job — for the
:class:`~workmesh.services.gateway.dispatch._runner.Runner`."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from typing import Any

import grpc

from workmesh.services.core.errors import WORKER_DRAINING, FailedPrecondition, NotFound, Unavailable
from workmesh.services.core.outcome import Outcome
from workmesh.services.gateway.discovery._catalog import Catalog
from workmesh.services.gateway.dispatch._attempt import Attempt, Lost, status_event, utcnow
from workmesh.services.gateway.dispatch._control import Control
from workmesh.services.gateway.dispatch._outcomes import Outcomes
from workmesh.services.gateway.dispatch._state import SideTasks
from workmesh.services.gateway.store import JobStore, JobUpdate
from workmesh.v1 import common_pb2, worker_pb2

S = common_pb2
_STREAMED = frozenset({"progress", "log"})
_AFTER_START = _STREAMED | {"result"}  # what RUNNING may share its commit with
_TERMINAL_ERRORS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.OUT_OF_RANGE,
}


class Consumer:
    """Consumes one attempt's ``Execute`` (or ``Attach``) stream into the store.

    Args:
        store: where job events go.
        catalog: where instance trouble (lost, busy) is reported.
        outcomes: the terminal writes.
        control: cancels sent to workers of jobs finished or deleted meanwhile.
        tasks: side tasks the dispatcher waits for when it stops.
        metrics: a ``GatewayMetrics`` (dispatch latency, transitions), or None.
        busy_pause: seconds an instance that answered RESOURCE_EXHAUSTED is skipped.
    """

    def __init__(
        self,
        store: JobStore,
        catalog: Catalog,
        outcomes: Outcomes,
        control: Control,
        tasks: SideTasks,
        *,
        metrics: Any = None,
        busy_pause: float = 0.2,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._outcomes = outcomes
        self._control = control
        self._tasks = tasks
        self._metrics = metrics
        self._busy_pause = busy_pause

    async def consume(self, a: Attempt) -> None:
        """Store the attempt's events until its outcome; raises Lost when the stream breaks."""
        job, inst = a.job, a.inst
        call = a.call
        if call is None:
            raise Lost("could not start the Execute call")
        try:
            while True:
                ev = await call.read()
                if ev is grpc.aio.EOF:
                    await a.settle()
                    break
                a.worker_seq = ev.seq
                kind = ev.WhichOneof("payload")
                # Non-terminal events are written without waiting for their commit before the
                # next worker event is read: a job's writes still reach the store in order
                # (tasks start in creation order), share group commits, and watchers see them
                # only once committed. A failed write surfaces at the next event or at the end.
                a.check_writes()
                # RUNNING, held back to share the commit of the event that came with it.
                running: tuple[list[S.JobEvent], JobUpdate] | None = None
                if kind == "started":
                    name = ev.started.instance_id or inst.name
                    running = (
                        [status_event(S.JOB_STATUS_RUNNING, attempt=a.number, instance_id=name)],
                        JobUpdate(
                            status=S.JOB_STATUS_RUNNING, started_at=utcnow(), instance_id=name, worker_seq=ev.seq
                        ),
                    )
                    self._outcomes.transition(S.JOB_STATUS_RUNNING, job.workflow_type)
                    if self._metrics is not None:
                        self._metrics.dispatch_latency((time.monotonic() - job.ready_at) * 1000, job.workflow_type)
                    # The worker's next event, when it is already here (a short job's result,
                    # its first progress), is stored in the same transaction as RUNNING: one
                    # commit less per job, and watchers still see RUNNING first. Only what is
                    # already received is joined, so RUNNING is never kept waiting.
                    ready = take_ready(call, _AFTER_START)
                    if ready is None:
                        a.write_soon(self._store, *running)
                        continue
                    ev, kind = ready, ready.WhichOneof("payload")
                    a.worker_seq = ev.seq
                if kind in _STREAMED:
                    # Every progress and log event the worker sent that is already here goes
                    # out in one append (all stored and numbered, one operation for the lot).
                    events: list[S.JobEvent] = [] if running is None else running[0]
                    progress = None
                    while True:
                        if kind == "progress":
                            progress = ev.progress
                            events.append(S.JobEvent(progress=progress))
                        else:
                            events.append(S.JobEvent(log=ev.log))
                        a.worker_seq = ev.seq
                        ev = take_ready(call)
                        if ev is None:
                            break
                        kind = ev.WhichOneof("payload")
                    if progress is not None:
                        self._outcomes.reported(job.job_id)
                    update = JobUpdate(progress=progress, worker_seq=a.worker_seq)
                    if running is not None:
                        update = dataclasses.replace(running[1], progress=progress, worker_seq=a.worker_seq)
                    a.write_soon(self._store, events, update)
                elif kind == "result":
                    a.outcome = Outcome.SUCCEEDED
                    # Queued behind the writes in flight (same transaction when they meet), with
                    # the attempt's end (and RUNNING, when the result came with it).
                    await self._outcomes.finish(
                        job.job_id,
                        [
                            *(running[0] if running is not None else ()),
                            S.JobEvent(result=ev.result),
                            status_event(S.JOB_STATUS_SUCCEEDED, attempt=a.number),
                        ],
                        S.JOB_STATUS_SUCCEEDED,
                        result=ev.result,
                        worker_seq=ev.seq,
                        ordered=True,
                        attempt=a,
                        running=running[1] if running is not None else None,
                    )
                    with contextlib.suppress(NotFound, FailedPrecondition, Unavailable):
                        await a.settle()  # committed before the terminal write: only errors are left
                    return
                elif kind == "error":
                    await a.settle()
                    await self._outcomes.on_error(a, ev.error)
                    return
        except grpc.aio.AioRpcError as exc:
            with contextlib.suppress(NotFound, FailedPrecondition):  # the writes below say so too
                await a.settle()
            code = exc.code()
            if code == grpc.StatusCode.UNAVAILABLE:
                self._catalog.mark_lost(inst)
            elif code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                self._catalog.mark_busy(inst, self._busy_pause)
            elif (
                code in _TERMINAL_ERRORS or (code == grpc.StatusCode.INTERNAL and a.worker_seq == 0 and not a.resumed)
            ) and not a.stop_status:
                # INTERNAL before the first event: the worker could not take the request (e.g.
                # decode it). Another instance of the same code would fail alike: not a lost worker.
                error = S.JobError(code=code.name, message=exc.details() or "")
                a.outcome, a.outcome_reason = Outcome.FAILED, f"{code.name}: {exc.details()}"
                await self._outcomes.finish(
                    job.job_id,
                    [S.JobEvent(error=error), status_event(S.JOB_STATUS_FAILED, code.name, a.number)],
                    S.JOB_STATUS_FAILED,
                    error,
                )
                return
            if code == grpc.StatusCode.NOT_FOUND and a.resumed and a.worker_seq == 0:
                # Taken over from a replica that recorded the dispatch and died (or let go)
                # before the worker got the job: this attempt never ran anywhere.
                a.unstarted = True
            elif a.worker_seq == 0 and not a.resumed and _refused(code, exc.details() or ""):
                # The worker refused the job before starting it: full (another gateway's jobs),
                # or draining (it left the registry a moment before this gateway saw it go, as
                # in a rolling upgrade). Not an attempt: the job goes to another instance.
                a.unstarted = True
            raise Lost(f"{code.name}: {exc.details()}") from None
        except asyncio.CancelledError:
            # Closing the channel of an instance that vanished cancels its Execute calls; only
            # a cancel of this task itself is a real cancellation.
            task = asyncio.current_task()
            if not inst.present and task is not None and not task.cancelling():
                a.drop_writes()
                raise Lost(f"instance {inst.name} left the registry") from None
            a.drop_writes()
            raise
        except (NotFound, FailedPrecondition):
            call.cancel()  # the job was deleted or finished (forced, or cancelled by another replica)
            if a.outcome is Outcome.LOST:
                a.outcome, a.outcome_reason = Outcome.CANCELLED, "job finished or deleted"
            self._tasks.spawn(self._control.send_cancel(inst, job.job_id, "job finished or deleted"))
            return
        except BaseException:
            a.drop_writes()
            raise
        raise Lost("the worker ended the stream without a result")


def _refused(code: grpc.StatusCode, details: str) -> bool:
    """Whether a worker's answer to Execute says it did not take the job."""
    return code == grpc.StatusCode.RESOURCE_EXHAUSTED or (
        code == grpc.StatusCode.UNAVAILABLE and details.startswith(WORKER_DRAINING)
    )


def take_ready(call, kinds: frozenset[str] = _STREAMED) -> worker_pb2.WorkerEvent | None:
    """The call's next event if it is of `kinds` (progress or log) and already received, else None."""
    take = getattr(call, "take_ready", None)  # session calls buffer; a plain Execute call does not say
    return None if take is None else take(kinds)
