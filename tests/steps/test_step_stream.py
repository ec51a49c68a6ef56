"""RunSteps (issue 13): the steps of one parent attempt as messages of one stream, each answered
by call id with what RunStep would have answered — real registry, gateway and worker processes."""

from __future__ import annotations

import queue

import grpc
import pytest
from google.protobuf.json_format import MessageToDict

from tests.support import eventually
from workmesh.services.devmesh import DevMesh
from workmesh.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc

pytestmark = pytest.mark.e2e
_END = object()


def _request(parent_id: str, call_id: int, name: str, workflow_type: str, **params) -> gateway_pb2.RunStepRequest:
    request = gateway_pb2.RunStepRequest(
        parent_job_id=parent_id, parent_attempt=1, step_name=name, workflow_type=workflow_type, call_id=call_id
    )
    for key, value in params.items():
        if isinstance(value, float):
            request.params[key].float_value = value
        else:
            request.params[key].string_value = value
    return request


def test_steps_on_one_stream_are_answered_by_call_id_and_a_cancelled_call_leaves_its_child_running(tmp_path):
    workers = ("workmesh.workers.examples.basic:worker",)
    with DevMesh(workers=workers, results=False, data_dir=tmp_path, log_dir=tmp_path) as mesh:  # noqa: SIM117
        with grpc.insecure_channel(mesh.gateway_address) as channel:
            stub = gateway_pb2_grpc.GatewayStub(channel)
            sleep = {"seconds": common_pb2.ParamValue(float_value=60.0)}
            parent_id = stub.SubmitJob(
                gateway_pb2.SubmitJobRequest(workflow_type="sleep", params=sleep), timeout=10
            ).job.job_id
            for event in stub.WatchJob(gateway_pb2.WatchJobRequest(job_id=parent_id), timeout=30):
                if event.HasField("status") and event.status.status == common_pb2.JOB_STATUS_RUNNING:
                    break
            asked: queue.Queue = queue.Queue()

            def requests():
                while (request := asked.get()) is not _END:
                    yield request

            replies = stub.RunSteps(requests(), timeout=60)
            try:
                # Three steps at once: two run in parallel, one is refused as RunStep refuses it.
                asked.put(_request(parent_id, 1, "a", "echo", message="m1"))
                asked.put(_request(parent_id, 2, "b", "echo", message="m2"))
                asked.put(_request(parent_id, 3, "c", "no-such-type"))
                got = {reply.call_id: reply for reply in (next(replies) for _ in range(3))}
                assert sorted(got) == [1, 2, 3]
                for call_id, message in ((1, "m1"), (2, "m2")):
                    job = got[call_id].response.job
                    assert got[call_id].status_code == 0
                    assert job.status == common_pb2.JOB_STATUS_SUCCEEDED and job.parent_id == parent_id
                    assert MessageToDict(job.result.outputs)["message"] == message
                assert got[3].status_code == grpc.StatusCode.NOT_FOUND.value[0]
                assert "no-such-type" in got[3].status_message and "echo" in got[3].status_message
                # The stream goes on after a refusal: a name reused with other params, then asked again.
                asked.put(_request(parent_id, 4, "a", "echo", message="other"))
                reply = next(replies)
                assert reply.call_id == 4 and reply.status_code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
                assert "step_name" in reply.status_message
                asked.put(_request(parent_id, 5, "a", "echo", message="m1"))
                reply = next(replies)
                assert reply.call_id == 5 and reply.response.reused
                assert reply.response.job.job_id == got[1].response.job.job_id
                # A call cancelled while its step runs gets no answer; its child job runs on.
                asked.put(_request(parent_id, 6, "long", "sleep", seconds=60.0))

                def long_child() -> gateway_pb2.Job:
                    jobs = stub.ListJobs(gateway_pb2.ListJobsRequest(parent_id=parent_id), timeout=10).jobs
                    found = [j for j in jobs if j.step_name == "long" and j.status == common_pb2.JOB_STATUS_RUNNING]
                    assert found, "the long step's child is not running yet"
                    return found[0]

                child = eventually(long_child, timeout=30)
                asked.put(gateway_pb2.RunStepRequest(call_id=6, cancel=True))
                asked.put(_END)
                assert list(replies) == [], "the stream ends without answering the cancelled call"
                again = stub.GetJob(gateway_pb2.GetJobRequest(job_id=child.job_id), timeout=10)
                assert again.status == common_pb2.JOB_STATUS_RUNNING
            finally:
                asked.put(_END)
                replies.cancel()
            stub.CancelJob(gateway_pb2.CancelJobRequest(job_id=parent_id), timeout=10)  # and its steps
