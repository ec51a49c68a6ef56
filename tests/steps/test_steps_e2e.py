"""Workflow steps end to end (issue 13): real registry, gateway and worker processes."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.json_format import MessageToDict

from workmesh.services.devmesh import DevMesh
from workmesh.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc

pytestmark = pytest.mark.e2e


def test_steps_run_as_child_jobs_and_report_on_the_parent(tmp_path):
    workers = ("tests.steps.pipeline:worker",)
    with DevMesh(workers=workers, results=False, data_dir=tmp_path, log_dir=tmp_path) as mesh:  # noqa: SIM117
        with grpc.insecure_channel(mesh.gateway_address) as channel:
            stub = gateway_pb2_grpc.GatewayStub(channel)
            job_id = stub.SubmitJob(gateway_pb2.SubmitJobRequest(workflow_type="pipeline"), timeout=10).job.job_id
            events = list(stub.WatchJob(gateway_pb2.WatchJobRequest(job_id=job_id), timeout=60))
            result = next(e.result for e in events if e.WhichOneof("payload") == "result")
            outputs = MessageToDict(result.outputs)
            assert outputs["second"] == "hi!", "step two got step one's output"
            assert outputs["unknown"].startswith("NOT_FOUND") and "echo" in outputs["unknown"]
            steps = [e.step for e in events if e.WhichOneof("payload") == "step"]
            kinds = [(s.step_name, s.kind) for s in steps]
            K = common_pb2.StepEvent
            assert kinds == [
                ("one", K.KIND_STARTED),
                ("one", K.KIND_SUCCEEDED),
                ("two", K.KIND_STARTED),
                ("two", K.KIND_SUCCEEDED),
            ]
            child = stub.GetJob(gateway_pb2.GetJobRequest(job_id=steps[0].child_job_id), timeout=5)
            assert (child.parent_id, child.step_name, child.status) == (job_id, "one", common_pb2.JOB_STATUS_SUCCEEDED)


_JOB_FIELDS = (
    "job_id",
    "workflow_type",
    "params",
    "status",
    "attempts",
    "last_seq",
    "trace_id",
    "labels",
    "instance_id",
    "parent_id",
    "step_name",
    "created_at",
    "started_at",
    "finished_at",
    "progress",
    "result",
    "error",
)


def test_a_steps_reply_is_the_child_as_stored_and_its_end_is_on_the_parent_once(tmp_path):
    # A short step is answered from the dispatcher's memory, and its "step ended" event is written
    # in the child's terminal transaction (services/gateway/_step_ends.py): what RunStep returns
    # must be what GetJob reads from the store, and the parent must show the step's end once.
    workers = ("workmesh.workers.examples.basic:worker",)
    with DevMesh(workers=workers, results=False, data_dir=tmp_path, log_dir=tmp_path) as mesh:  # noqa: SIM117
        with grpc.insecure_channel(mesh.gateway_address) as channel:
            stub = gateway_pb2_grpc.GatewayStub(channel)
            sleep = {"seconds": common_pb2.ParamValue(float_value=60.0)}
            parent = stub.SubmitJob(gateway_pb2.SubmitJobRequest(workflow_type="sleep", params=sleep), timeout=10)
            parent_id = parent.job.job_id
            for event in stub.WatchJob(gateway_pb2.WatchJobRequest(job_id=parent_id), timeout=30):
                if event.HasField("status") and event.status.status == common_pb2.JOB_STATUS_RUNNING:
                    break
            replies = []
            for i in range(3):
                request = gateway_pb2.RunStepRequest(
                    parent_job_id=parent_id, parent_attempt=1, step_name=f"s{i}", workflow_type="echo"
                )
                request.params["message"].string_value = f"m{i}"
                replies.append(stub.RunStep(request, timeout=30))
            again = stub.RunStep(request, timeout=30)
            assert again.reused and again.job.job_id == replies[-1].job.job_id
            for reply in replies:
                assert not reply.reused
                stored = stub.GetJob(gateway_pb2.GetJobRequest(job_id=reply.job.job_id), timeout=5)
                assert stored.status == common_pb2.JOB_STATUS_SUCCEEDED
                for name in _JOB_FIELDS:
                    assert getattr(reply.job, name) == getattr(stored, name), name
                for job in (reply.job, again.job):
                    assert job.updated_at.ToNanoseconds() > 0
            stub.CancelJob(gateway_pb2.CancelJobRequest(job_id=parent_id), timeout=10)
            events = list(stub.WatchJob(gateway_pb2.WatchJobRequest(job_id=parent_id), timeout=30))
            K = common_pb2.StepEvent
            kinds = [(e.step.step_name, e.step.kind) for e in events if e.HasField("step")]
            assert kinds == [(f"s{i}", kind) for i in range(3) for kind in (K.KIND_STARTED, K.KIND_SUCCEEDED)]
            ended = [e.step for e in events if e.HasField("step") and e.step.kind == K.KIND_SUCCEEDED]
            assert [s.child_job_id for s in ended] == [r.job.job_id for r in replies]
            assert all(s.child_status == common_pb2.JOB_STATUS_SUCCEEDED for s in ended)
