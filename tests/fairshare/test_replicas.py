"""Two gateway replicas on one PostgreSQL order owners by the same usage: work one replica ran
counts on the other, so the other dispatches a light user's job before a heavy user's older one."""

from __future__ import annotations

import grpc
import pytest

from tests.fairshare.support import BASIC, all_terminal, started, submit
from tests.support import eventually
from workmesh.services.devmesh import DevMesh
from workmesh.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc

pytestmark = pytest.mark.e2e


def test_usage_from_one_replica_orders_the_queue_of_the_other(postgres_url, tmp_path):
    with DevMesh(workers=(), results=False, database_url=postgres_url, data_dir=tmp_path, log_dir=tmp_path) as mesh:
        b_port = mesh.serve("gateway", 0, lambda port: ("gateway", "--listen", f"127.0.0.1:{port}"))
        mesh.add_worker(BASIC, "--capacity", "1")
        mesh.wait_for_types()
        with grpc.insecure_channel(mesh.gateway_address) as ch_a, grpc.insecure_channel(f"127.0.0.1:{b_port}") as ch_b:
            a, b = gateway_pb2_grpc.GatewayStub(ch_a), gateway_pb2_grpc.GatewayStub(ch_b)
            # b is submitted "sleep" jobs: wait for that type (each type registers on its own).
            eventually(
                lambda: any(
                    t.type.name == "sleep" and t.healthy_instances
                    for t in b.ListWorkflowTypes(gateway_pb2.ListWorkflowTypesRequest(), timeout=5).types
                ),
                timeout=60,
            )
            heavy = [submit(a, "heavy", 0.3) for _ in range(5)]
            eventually(lambda: all_terminal(a, heavy), timeout=60)

            def b_knows_heavy_usage():
                view = b.GetQueue(gateway_pb2.GetQueueRequest(), timeout=10)
                return any(o.user == "heavy" and o.usage_seconds > 1.0 for o in view.owners)

            eventually(b_knows_heavy_usage, timeout=30, interval=0.5)
            blocker = submit(b, "blocker", 1.0)
            eventually(
                lambda: (
                    b.GetJob(gateway_pb2.GetJobRequest(job_id=blocker), timeout=10).status
                    == common_pb2.JOB_STATUS_RUNNING
                ),
                timeout=30,
            )
            older_heavy = submit(b, "heavy", 0.1)
            light = submit(b, "light", 0.1)
            done = eventually(lambda: all_terminal(b, [blocker, older_heavy, light]), timeout=60)
            assert {j.status for j in done.values()} == {common_pb2.JOB_STATUS_SUCCEEDED}
            assert started(done[light]) < started(done[older_heavy])
