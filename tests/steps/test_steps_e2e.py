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
