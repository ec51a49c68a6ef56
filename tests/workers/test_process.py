"""A worker process (run_worker) drains on SIGTERM: deregisters at once, rejects new jobs,
finishes the running one, exits 0. Real processes: an embedded registry and a worker."""

from __future__ import annotations

import signal
import threading

import grpc
import pytest

from tests.support import eventually, free_port, run, wait_for_port
from tests.workers.helpers import execute_request
from workmesh.registry import find_service, service_name
from workmesh.v1 import worker_pb2_grpc

REGISTRY = (
    "import asyncio, sys; from workmesh.registry import run_embedded_registry; "
    "asyncio.run(run_embedded_registry('127.0.0.1', int(sys.argv[1])))"
)
WORKER = "import asyncio, sys; from workmesh.workers import run_worker; asyncio.run(run_worker(sys.argv[1]))"


def passing(address: str, workflow_type: str) -> list:
    from workmesh.registry import RegistryConfig

    return run(find_service(RegistryConfig(address=address), service_name(workflow_type)))


def test_sigterm_drains_a_worker_process(procs):
    registry_port, worker_port = free_port(), free_port()
    procs.start("-c", REGISTRY, str(registry_port), name="registry")
    wait_for_port(registry_port)
    address = f"127.0.0.1:{registry_port}"
    env = {"CONSUL_HTTP_ADDR": address, "WORKMESH_WORKER_PORT": str(worker_port), "WORKMESH_WORKER_DRAIN_GRACE": "60"}
    worker = procs.start("-c", WORKER, "workmesh.workers.examples.basic:worker", env=env, name="worker")
    # Each type registers on its own; the test runs "sleep" and "echo" and sees both deregister.
    eventually(lambda: passing(address, "sleep") and passing(address, "echo"), timeout=60)

    with grpc.insecure_channel(f"127.0.0.1:{worker_port}") as channel:
        stub = worker_pb2_grpc.WorkerStub(channel)
        stream = stub.Execute(execute_request("long", "sleep", seconds=2.0, steps=20))
        events = [next(stream), next(stream)]  # started, first progress: the job runs
        assert events[0].WhichOneof("payload") == "started"
        rest: list = []
        reader = threading.Thread(target=lambda: rest.extend(stream), daemon=True)
        reader.start()

        worker.send_signal(signal.SIGTERM)  # by pid; the procs fixture stops everything afterwards
        # Deregistered at once (the job still runs), and new jobs are refused.
        eventually(lambda: not passing(address, "sleep") and not passing(address, "echo"), timeout=10)

        def refused():
            with pytest.raises(grpc.RpcError) as info:
                list(stub.Execute(execute_request("new", "echo")))
            return info.value.code() == grpc.StatusCode.UNAVAILABLE and "draining" in info.value.details()

        assert refused()
        reader.join(30)
        assert rest and rest[-1].WhichOneof("payload") == "result", rest[-1:]
        assert rest[-1].result.outputs["steps"] == 20
    assert worker.wait(30) == 0, procs.log_of(worker)
