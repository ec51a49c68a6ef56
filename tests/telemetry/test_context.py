"""A job's trace context stored with it and picked up again: one trace per job, a span per attempt."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

from opentelemetry.trace import SpanKind

from tests.support import run
from workmesh.services.core.telemetry import (
    ATTR_ATTEMPT,
    ATTR_INSTANCE,
    ATTR_JOB_ID,
    ATTR_WORKFLOW_TYPE,
    current_trace_id,
    current_traceparent,
    end_span,
    extract_context,
    get_logger,
    inject_context,
    job_span,
    start_job_span,
    trace_id_from_carrier,
    use_span,
)


def test_attempts_join_the_submit_trace_across_a_queue(captured):
    queue: asyncio.Queue = asyncio.Queue()

    async def submit() -> str:
        with job_span("job.submit", job_id="j-7", workflow_type="heat-demand", kind=SpanKind.SERVER):
            # The gateway stores this with the job (a JSON column survives a restart).
            await queue.put(("j-7", json.dumps(inject_context())))
            return current_trace_id()

    async def dispatcher() -> list[str]:
        job_id, stored = await queue.get()
        seen = []
        for attempt in (1, 2):  # the first attempt's worker is lost; the job is retried
            with job_span(
                "job.dispatch",
                job_id=job_id,
                workflow_type="heat-demand",
                attempt=attempt,
                instance=f"w-{attempt}",
                parent=json.loads(stored),
            ):
                seen.append(current_trace_id())
        return seen

    async def main():
        # Separate tasks: the dispatcher does not inherit the submit's context by itself.
        dispatched = asyncio.create_task(dispatcher())
        submitted = await asyncio.create_task(submit())
        return submitted, await dispatched

    submit_trace, dispatch_traces = run(main())
    assert dispatch_traces == [submit_trace, submit_trace]

    spans = captured.spans.get_finished_spans()
    (submit_span,) = [s for s in spans if s.name == "job.submit"]
    attempts = sorted((s for s in spans if s.name == "job.dispatch"), key=lambda s: s.attributes[ATTR_ATTEMPT])
    assert [s.attributes[ATTR_ATTEMPT] for s in attempts] == [1, 2]
    assert len({s.context.span_id for s in attempts}) == 2
    for span in attempts:
        assert span.parent.span_id == submit_span.context.span_id
        assert span.context.trace_id == submit_span.context.trace_id
        assert span.attributes[ATTR_JOB_ID] == "j-7"
        assert span.attributes[ATTR_WORKFLOW_TYPE] == "heat-demand"
    assert [s.attributes[ATTR_INSTANCE] for s in attempts] == ["w-1", "w-2"]


def test_carrier_round_trip(captured):
    with job_span("job.submit", job_id="j-1"):
        carrier = inject_context()
        trace_id = current_trace_id()
    assert set(carrier) >= {"traceparent"}
    assert trace_id_from_carrier(carrier) == trace_id
    assert len(trace_id) == 32 and int(trace_id, 16)


def test_empty_or_missing_carrier_starts_a_new_trace(captured):
    assert trace_id_from_carrier({}) == ""
    assert trace_id_from_carrier(None) == ""
    assert trace_id_from_carrier({"traceparent": "garbage"}) == ""
    with job_span("outer", job_id="a"):
        outer = current_trace_id()
        # A job without a stored context must not be folded into whatever span happens to be current.
        with job_span("job.dispatch", job_id="b", parent={}):
            assert current_trace_id() not in ("", outer)
    assert extract_context(None) is not None


def test_job_span_binds_job_fields_to_log_lines_and_unbinds_after(captured):
    log = get_logger("tests.context")
    with job_span("job.execute", job_id="j-9", workflow_type="demo", attempt=3) as span:
        log.info("inside")
    log.info("outside")
    inside, outside = [json.loads(line) for line in captured.logs.getvalue().splitlines()]
    assert inside["job_id"] == "j-9" and inside["workflow_type"] == "demo" and inside["attempt"] == 3
    assert inside["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert inside["span_id"] == format(span.get_span_context().span_id, "016x")
    assert "job_id" not in outside and "trace_id" not in outside


def test_exception_marks_the_span_failed(captured):
    try:
        with job_span("job.execute", job_id="j-2"):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    (span,) = captured.spans.get_finished_spans()
    assert span.status.status_code.name == "ERROR"
    assert span.events[0].name == "exception"


def test_traceparent_string_is_enough_to_store(captured):
    with job_span("job.submit", job_id="j-4") as submit:
        stored = current_traceparent()  # one string column in the job store
    assert stored.startswith("00-") and trace_id_from_carrier(stored) == format(
        submit.get_span_context().trace_id, "032x"
    )
    with job_span("job.dispatch", job_id="j-4", attempt=1, parent=stored) as dispatch:
        assert dispatch.parent.span_id == submit.get_span_context().span_id
    with job_span("job.dispatch", job_id="j-5", parent=""):
        assert current_trace_id() != trace_id_from_carrier(stored)
    assert current_traceparent() == ""


def test_queued_span_covers_the_wait(captured):
    created = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    with job_span("job.submit", job_id="j-6"):
        stored = current_traceparent()
    with job_span("job.queued", job_id="j-6", parent=stored, start_time=created):
        pass
    queued = next(s for s in captured.spans.get_finished_spans() if s.name == "job.queued")
    assert queued.start_time == int(created.timestamp() * 1e9)
    assert queued.end_time - queued.start_time >= 5 * 10**9


def test_attempt_span_spans_tasks_and_ends_where_the_attempt_ends(captured):
    """The gateway's shape: start the Execute call and the attempt task under the attempt's span,
    end the span from the task when the attempt is over."""
    with job_span("job.submit", job_id="j-8") as submit:
        stored = current_traceparent()

    async def run_attempt(span, fail: bool) -> str:
        await asyncio.sleep(0)
        seen = current_trace_id()
        end_span(span, RuntimeError("worker lost") if fail else None)
        return seen

    async def dispatch():
        results = []
        for attempt in (1, 2):
            span = start_job_span("job.attempt", job_id="j-8", attempt=attempt, parent=stored)
            with use_span(span):
                task = asyncio.get_running_loop().create_task(run_attempt(span, fail=attempt == 1))
            assert current_trace_id() == ""  # not current outside the block
            results.append(await task)
        return results

    traces = run(dispatch())
    submit_trace = format(submit.get_span_context().trace_id, "032x")
    assert traces == [submit_trace, submit_trace]
    attempts = sorted(
        (s for s in captured.spans.get_finished_spans() if s.name == "job.attempt"),
        key=lambda s: s.attributes[ATTR_ATTEMPT],
    )
    assert [s.status.status_code.name for s in attempts] == ["ERROR", "UNSET"]
    assert "worker lost" in attempts[0].status.description
    assert all(s.parent.span_id == submit.get_span_context().span_id for s in attempts)


def test_tracing_off_passes_the_sampled_flag_on():
    """A process without exporter between two that export must not cut their trace."""
    sampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with job_span("job.execute", job_id="j", parent=sampled) as span:
        assert not span.is_recording()
        onward = current_traceparent()
    assert onward.startswith("00-0af7651916cd43dd8448eb211c80319c-") and onward.endswith("-01")
    assert onward != sampled  # a span id of its own
