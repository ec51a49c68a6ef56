"""One trace per job across gateway, worker and results, over real gRPC calls, with a retry.

Every service runs in this process (so one in-memory exporter sees all spans), but they talk
to each other only through gRPC on loopback ports and find each other through the embedded
registry: the trace context crosses real calls and the gateway's queue.
"""

from __future__ import annotations

from tests.gateway.mesh import Mesh, terminal
from tests.results.support import serving
from tests.series.workflows import series_async
from tests.support import run
from workmesh.registry import Registrar, ServiceRegistration
from workmesh.services.results import ParquetStore
from workmesh.v1 import common_pb2 as c


def run_job_with_retry(tmp_path) -> tuple[str, list[c.JobEvent]]:
    async def body():
        async with serving(ParquetStore(tmp_path / "series")) as results, Mesh() as mesh:
            registration = ServiceRegistration(
                name="workmesh-results", service_id="workmesh-results-trace", address="127.0.0.1", port=results.port
            )
            async with Registrar(mesh.registry.config, [registration]):
                await mesh.add_worker([series_async])
                await mesh.wait_instances("series-async", 1)
                job = await mesh.submit("series-async", steps=24, fail_first=True)
                return job.job_id, await mesh.follow(job.job_id)

    return run(body())


def test_a_retried_job_is_one_trace_across_gateway_worker_and_results(captured, tmp_path):
    job_id, events = run_job_with_retry(tmp_path)
    assert terminal(events) == c.JOB_STATUS_SUCCEEDED
    captured.telemetry.force_flush()
    spans = captured.spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}

    submit = [s for s in spans if s.name == "job.submit" and s.attributes.get("workmesh.job_id") == job_id]
    assert len(submit) == 1, [s.name for s in spans]
    trace_id = submit[0].context.trace_id

    attempts = sorted((s for s in spans if s.name == "job.attempt"), key=lambda s: s.attributes["workmesh.attempt"])
    assert [s.attributes["workmesh.attempt"] for s in attempts] == [1, 2], "each attempt has its own span"
    for attempt in attempts:
        assert attempt.context.trace_id == trace_id
        assert attempt.parent.span_id == submit[0].context.span_id
        assert attempt.attributes["workmesh.workflow_type"] == "series-async"
        assert attempt.attributes["workmesh.instance"]

    executes = sorted((s for s in spans if s.name == "job.execute"), key=lambda s: s.attributes["workmesh.attempt"])
    assert [s.attributes["workmesh.attempt"] for s in executes] == [1, 2]
    for attempt, execute in zip(attempts, executes, strict=False):
        assert execute.parent.span_id == attempt.context.span_id, "the worker's span continues the attempt"
    assert executes[0].status.is_ok is False, "the failed first attempt is marked as an error"

    def descends_from(span, ancestor) -> bool:
        while span.parent is not None:
            if span.parent.span_id == ancestor.context.span_id:
                return True
            span = by_id.get(span.parent.span_id)
            if span is None:
                return False
        return False

    writes = [s for s in spans if "WriteSeries" in s.name and s.kind.name == "SERVER"]
    assert writes, [s.name for s in spans]
    assert all(w.context.trace_id == trace_id for w in writes)
    assert any(descends_from(w, executes[1]) for w in writes), "the results service's span is in the job's tree"
    assert any(descends_from(w, executes[0]) for w in writes), "the first attempt wrote too"
