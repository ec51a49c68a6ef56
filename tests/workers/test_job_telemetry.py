"""A job attempt runs inside a ``job.execute`` span that continues the trace carried in
``ExecuteRequest.trace_context``; the handler's log context carries the job (both paths)."""

from __future__ import annotations

import grpc
import pytest
from structlog.contextvars import get_contextvars

from tests.support import run
from tests.workers.helpers import collect, serving
from workmesh.services.core.telemetry import current_trace_id
from workmesh.v1 import common_pb2, worker_pb2
from workmesh.workers import Context, Worker, workflow

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CARRIER = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}


def _seen(ctx: Context) -> dict:
    bound = get_contextvars()
    return {
        "trace_id": current_trace_id(),
        "job_id": bound.get("job_id", ""),
        "attempt": str(bound.get("attempt", "")),
        "instance": bound.get("instance", ""),
    }


@workflow(name="traced-async", version="1.0.0")
async def traced_async(ctx: Context) -> dict:
    return _seen(ctx)


@workflow(name="traced-thread", version="1.0.0")
def traced_thread(ctx: Context) -> dict:
    return _seen(ctx)


@pytest.mark.parametrize("workflow_type", ["traced-async", "traced-thread"])
@pytest.mark.parametrize("path", ["execute", "session"])
def test_handler_runs_in_the_jobs_trace_with_job_fields_bound(workflow_type, path):
    async def main():
        worker = Worker([traced_async, traced_thread], instance_id="w-1")
        async with serving(worker) as stub:
            request = worker_pb2.ExecuteRequest(
                job_id="job-t", workflow_type=workflow_type, attempt=2, trace_context=CARRIER
            )
            if path == "execute":
                events = await collect(stub.Execute(request))
            else:
                call = stub.Session()
                await call.write(worker_pb2.SessionRequest(commands=[worker_pb2.SessionCommand(execute=request)]))
                events = []
                while not events or not events[-1].HasField("result"):
                    reply = await call.read()
                    events.extend(item.event for item in reply.events)
                call.cancel()
        outputs = dict(events[-1].result.outputs)
        assert outputs == {"trace_id": TRACE_ID, "job_id": "job-t", "attempt": "2", "instance": "w-1"}

    run(main(), timeout=30)


def test_without_a_carrier_the_attempt_still_gets_a_trace():
    async def main():
        worker = Worker([traced_async])
        async with serving(worker) as stub:
            events = await collect(stub.Execute(worker_pb2.ExecuteRequest(job_id="j", workflow_type="traced-async")))
        trace_id = events[-1].result.outputs["trace_id"]
        assert len(trace_id) == 32 and trace_id != TRACE_ID

    run(main(), timeout=30)


def test_worker_metrics_report_running_capacity_and_finished_jobs():
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from workmesh.services.core.telemetry._metrics import install_meter_provider
    from workmesh.workers.examples.basic import echo, fail, sleep

    reader = InMemoryMetricReader()
    install_meter_provider(MeterProvider(metric_readers=[reader]))

    def points() -> dict[str, list]:
        found: dict[str, list] = {}
        for resource in reader.get_metrics_data().resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(
                        (dict(p.attributes), p.value) for p in metric.data.data_points
                    )
        return found

    async def main():
        worker = Worker([echo, fail, sleep], capacity=3, instance_id="w-m")
        async with serving(worker) as stub:
            await collect(stub.Execute(worker_pb2.ExecuteRequest(job_id="ok", workflow_type="echo")))
            await collect(stub.Execute(worker_pb2.ExecuteRequest(job_id="bad", workflow_type="fail")))
            call = stub.Execute(
                worker_pb2.ExecuteRequest(
                    job_id="slow", workflow_type="sleep", params={"seconds": common_pb2.ParamValue(float_value=30)}
                )
            )
            await call.read()  # started: one job running now
            seen = points()
            await stub.Cancel(worker_pb2.CancelRequest(job_id="slow"))
            while await call.read() is not grpc.aio.EOF:
                pass
        return seen

    try:
        seen = run(main(), timeout=30)
    finally:
        install_meter_provider(metrics.NoOpMeterProvider())
    assert ({"instance": "w-m"}, 3) in seen["workmesh.worker.capacity"]
    assert ({"instance": "w-m", "workflow_type": "sleep"}, 1) in seen["workmesh.worker.jobs.running"]
    finished = {(a["workflow_type"], a["outcome"]): v for a, v in seen["workmesh.worker.jobs"]}
    assert finished == {("echo", "succeeded"): 1, ("fail", "failed"): 1}
