"""``workmesh bench steps``: the cost of workflow steps (issue 13).

A mesh of real processes (registry, gateway on the chosen store, one worker serving the
``bench-steps`` parent and the no-op step type, capacity 128). Per run and mode (100 no-op steps
in sequence, then 100 in parallel):

- ``per_step_ms``: the parent's first attempt runs its steps; the time from its RUNNING event to
  the end event of its last step (gateway timestamps), divided by the number of steps. The steps
  do nothing, so all of it is the platform: RunStep, the child's submit, dispatch, run and
  result, the step events on the parent.
- the first attempt then fails on purpose and RetryJob runs the parent again with every step
  done: ``reexecute_s`` is the handler's own time for asking for all steps again (each one
  answered from the store), ``retry_to_end_s`` the client's time from RetryJob to SUCCEEDED
  (dispatch and the result included).

Several runs; the figures of each and their min/median/max.
"""

from __future__ import annotations

import statistics
import time

import grpc
from google.protobuf.json_format import MessageToDict

from workmesh.services.devmesh import DevMesh
from workmesh.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc

WORKER = "workmesh.services.bench._steps_worker:worker"
_TERMINAL = {
    common_pb2.JOB_STATUS_SUCCEEDED,
    common_pb2.JOB_STATUS_FAILED,
    common_pb2.JOB_STATUS_CANCELLED,
    common_pb2.JOB_STATUS_TIMED_OUT,
}


def _wait_types(stub, names: set[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        types = stub.ListWorkflowTypes(gateway_pb2.ListWorkflowTypesRequest(), timeout=10).types
        if names <= {t.type.name for t in types if t.healthy_instances > 0}:
            return
        time.sleep(0.1)
    raise RuntimeError(f"the bench worker's types {sorted(names)} were not listed within {timeout:g} s")


def _until_end(stub, job_id: str, after: int = 0) -> list[common_pb2.JobEvent]:
    return list(stub.WatchJob(gateway_pb2.WatchJobRequest(job_id=job_id, after_seq=after), timeout=600))


def _one(stub, steps: int, parallel: bool) -> dict:
    params = {
        "steps": common_pb2.ParamValue(int_value=steps),
        "parallel": common_pb2.ParamValue(bool_value=parallel),
        "fail_first": common_pb2.ParamValue(bool_value=True),
    }
    job = stub.SubmitJob(gateway_pb2.SubmitJobRequest(workflow_type="bench-steps", params=params), timeout=30).job
    events = _until_end(stub, job.job_id)
    running = next(
        e.time.ToNanoseconds()
        for e in events
        if e.HasField("status") and e.status.status == common_pb2.JOB_STATUS_RUNNING
    )
    ended = [e for e in events if e.HasField("step") and e.step.kind != common_pb2.StepEvent.KIND_STARTED]
    final = events[-1].status.status
    if len(ended) != steps or final != common_pb2.JOB_STATUS_FAILED:
        raise RuntimeError(f"bench-steps job {job.job_id}: {len(ended)} steps ended, status {final}")
    per_step_ms = (ended[-1].time.ToNanoseconds() - running) / 1e6 / steps
    start = time.perf_counter()
    reply = stub.RetryJob(gateway_pb2.RetryJobRequest(job_id=job.job_id), timeout=30)
    again = _until_end(stub, job.job_id, reply.job.last_seq)
    retry_s = time.perf_counter() - start
    done = stub.GetJob(gateway_pb2.GetJobRequest(job_id=job.job_id), timeout=30)
    if done.status != common_pb2.JOB_STATUS_SUCCEEDED:
        raise RuntimeError(f"bench-steps job {job.job_id} retried: {done.status} {done.error.message}")
    rerun = [e for e in again if e.HasField("step") and e.step.kind == common_pb2.StepEvent.KIND_STARTED]
    if rerun:
        raise RuntimeError(f"bench-steps job {job.job_id}: {len(rerun)} steps ran again on retry")
    return {
        "per_step_ms": round(per_step_ms, 3),
        "reexecute_s": round(MessageToDict(done.result.outputs)["steps_s"], 4),
        "retry_to_end_s": round(retry_s, 4),
    }


def _spread(values: list[float]) -> dict:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def bench_steps(database_url: str, data_dir, runs: int = 3, steps: int = 100) -> dict:
    """Run the benchmark on a fresh mesh whose gateway uses `database_url`; the figures."""
    out: dict = {}
    with (
        DevMesh(
            workers=(WORKER,), results=False, database_url=database_url, data_dir=data_dir, log_dir=data_dir
        ) as mesh,
        grpc.insecure_channel(mesh.gateway_address) as channel,
    ):
        stub = gateway_pb2_grpc.GatewayStub(channel)
        _wait_types(stub, {"bench-steps", "bench-step-noop"})
        _one(stub, 5, False)  # warm-up: connections, first-call costs
        for mode, parallel in (("sequential", False), ("parallel", True)):
            figures = [_one(stub, steps, parallel) for _ in range(runs)]
            out[mode] = {"runs": figures, **{k: _spread([f[k] for f in figures]) for k in figures[0]}}
    return out
