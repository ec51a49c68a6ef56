"""Context: progress coalescing, logs, cancellation and results, from async and thread handlers.

These run a real Worker's jobs on the event loop without the gRPC layer (that is test_server.py).
"""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest

from tests.support import run
from tests.workers.helpers import execute_request, kinds
from workmesh.services.core.errors import InvalidArgument
from workmesh.v1 import common_pb2
from workmesh.workers import Cancelled, Context, Param, Result, Worker, workflow


async def run_job(worker: Worker, job_id: str, workflow_type: str, **params):
    job, after = worker.execute(execute_request(job_id, workflow_type, **params))
    return [event async for event in job.follow(after)]


@workflow(name="burst", params=[Param.int("n", default=1000)])
async def burst(ctx: Context, n: int) -> dict:
    for i in range(n):  # no await: all but the first progress land inside one 50 ms window
        ctx.progress((i + 1) / n, f"{i + 1}/{n}")
    return {"n": n}


@workflow(name="chatty", params=[Param.int("n", default=3)])
def chatty(ctx: Context, n: int) -> Result:
    assert threading.current_thread() is not threading.main_thread()
    for i in range(20000):
        ctx.progress(i / 20000)
    ctx.progress(1.0, "done")
    ctx.log("warning", "low on coffee", cups=0)
    ctx.logger.debug("below the stream level: Python logging only")
    ctx.logger.info("computed %d things", n)
    return Result(outputs={"mean": np.float64(2.5), "counts": np.arange(3), "n": n}, data=b"\x00raw")


@workflow(name="watcher")
async def watcher(ctx: Context) -> dict:
    seen = await ctx.wait_cancelled(timeout=0.01)
    assert not seen and not ctx.cancelled
    ctx.progress(0.5, "waiting for cancel")
    assert await ctx.wait_cancelled()  # until cancelled
    assert ctx.cancelled
    ctx.check_cancelled()
    return {"unreachable": True}


@workflow(name="bad-return")
async def bad_return(ctx: Context) -> dict:
    return ["not", "a", "dict"]  # type: ignore[return-value]


def test_progress_bursts_are_coalesced_and_last_is_kept():
    async def body():
        events = await run_job(Worker([burst]), "j1", "burst", n=1000)
        progress = [e.progress for e in events if e.WhichOneof("payload") == "progress"]
        assert 1 <= len(progress) < 20
        assert progress[-1].fraction == 1.0 and progress[-1].message == "1000/1000"
        assert kinds(events)[0] == "started" and kinds(events)[-1] == "result"
        assert [e.seq for e in events] == list(range(1, len(events) + 1))

    run(body())


def test_thread_handler_reports_progress_logs_and_result(caplog):
    async def body():
        with caplog.at_level(logging.INFO, logger="workmesh.workers.job"):
            events = await run_job(Worker([chatty]), "j2", "chatty", n=3)
        progress = [e.progress for e in events if e.WhichOneof("payload") == "progress"]
        assert progress[-1].fraction == 1.0 and progress[-1].message == "done"
        assert len(progress) < 200
        logs = [e.log for e in events if e.WhichOneof("payload") == "log"]
        assert [(line.level, line.message) for line in logs] == [
            (common_pb2.LOG_LEVEL_WARNING, "low on coffee"),
            (common_pb2.LOG_LEVEL_INFO, "computed 3 things"),
        ]
        assert dict(logs[0].fields) == {"cups": "0"}
        result = events[-1].result
        assert result.data == b"\x00raw"
        assert result.outputs["mean"] == 2.5 and list(result.outputs["counts"]) == [0, 1, 2]
        assert "computed 3 things" in caplog.text  # the logger also feeds Python logging

    run(body())


def test_wait_cancelled_and_check_cancelled():
    async def body():
        worker = Worker([watcher])
        job, _ = worker.execute(execute_request("j3", "watcher"))
        stream = job.follow(0)
        assert (await anext(stream)).WhichOneof("payload") == "started"
        assert (await anext(stream)).progress.message == "waiting for cancel"
        assert worker.cancel("j3", "user asked")
        events = [e async for e in stream]
        assert events[-1].error.code == "CANCELLED" and events[-1].error.message == "user asked"
        assert not events[-1].error.retryable
        assert not worker.cancel("nope")
        assert worker.running == 0

    run(body())


def test_bad_return_value_is_a_handler_error():
    async def body():
        events = await run_job(Worker([bad_return]), "j4", "bad-return")
        assert events[-1].error.code == "HANDLER_ERROR"
        assert "return a dict or workmesh.workers.Result" in events[-1].error.message

    run(body())


def test_context_fields_and_log_levels():
    seen = {}

    @workflow(name="fields", params=[Param.int("n", default=2), Param.string("s", required=False)])
    async def fields(ctx: Context, n: int, s: str | None) -> dict:
        seen.update(job_id=ctx.job_id, attempt=ctx.attempt, params=dict(ctx.params), type=ctx.workflow_type)
        with pytest.raises(ValueError, match="unknown log level"):
            ctx.log("loud", "x")
        with pytest.raises(ValueError, match="nan"):
            ctx.progress(float("nan"))
        with pytest.raises(InvalidArgument, match="measurement"):
            ctx.series("not a name!")  # checked at once; writing needs a results service (tests/series)
        ctx.progress(7)  # clamped to 1.0
        return {}

    async def body():
        events = await run_job(Worker([fields]), "j5", "fields")
        assert events[-1].WhichOneof("payload") == "result", events[-1]
        assert [e.progress.fraction for e in events if e.WhichOneof("payload") == "progress"] == [1.0]

    run(body())
    assert seen == {"job_id": "j5", "attempt": 1, "params": {"n": 2, "s": None}, "type": "fields"}


def test_cancelled_is_a_workmesh_error():
    from workmesh.services.core.errors import WorkmeshError

    assert issubclass(Cancelled, WorkmeshError)


def test_finished_jobs_are_dropped_after_retention_or_beyond_the_count():
    from workmesh.services.core.errors import NotFound

    async def body():
        expired = Worker([burst], retention=0)
        await run_job(expired, "old", "burst", n=1)
        assert expired.attach("old", 0).done  # still there: nothing pruned it yet
        await run_job(expired, "new", "burst", n=1)  # an Execute prunes what outlived retention
        with pytest.raises(NotFound, match="'old' is not known on this worker"):
            expired.attach("old", 0)
        counted = Worker([burst], max_retained=2)
        for i in range(4):
            await run_job(counted, f"j{i}", "burst", n=1)
        with pytest.raises(NotFound):
            counted.attach("j0", 0)
        assert [e.seq for e in [e async for e in counted.attach("j3", 0).follow(1)]] == [2, 3]

    run(body())


def test_result_data_beyond_the_message_limit_is_a_clear_error(monkeypatch):
    from workmesh.workers import _result

    monkeypatch.setattr(_result, "MAX_RESULT_DATA", 10)  # stands in for the 63 MiB limit

    @workflow(name="big")
    async def big(ctx: Context) -> Result:
        return Result(data=b"x" * 11)

    async def body():
        return await run_job(Worker([big]), "b", "big")

    error = run(body())[-1].error
    assert error.code == "RESULT_TOO_LARGE" and "11 bytes; at most 10" in error.message
