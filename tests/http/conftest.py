"""One dev mesh of real processes (registry, results, gateway with HTTP, example workers) for
every test of the HTTP API and the console."""

from __future__ import annotations

import grpc
import pytest

from tests.http.client import Http
from workmesh.services.devmesh import EXAMPLE_WORKERS, DevMesh
from workmesh.v1 import gateway_pb2_grpc

# The tracing UI the console links trace ids to (nothing listens there: only the link is checked).
TRACE_URL = "http://tracing.invalid:16686/trace/{trace_id}?from=workmesh"


@pytest.fixture(scope="session")
def mesh(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("http-mesh")
    # A long heartbeat: a dropped SSE client must be noticed by its disconnect, not the next write.
    env = {"WORKMESH_HTTP_HEARTBEAT": "300", "WORKMESH_HTTP_TRACE_URL": TRACE_URL}
    with DevMesh(workers=EXAMPLE_WORKERS, results=True, data_dir=tmp, log_dir=tmp, env=env) as started:
        yield started


@pytest.fixture(scope="session")
def http(mesh) -> Http:
    return Http(mesh.http_port)


@pytest.fixture(scope="session")
def stub(mesh):
    with grpc.insecure_channel(mesh.gateway_address) as channel:
        yield gateway_pb2_grpc.GatewayStub(channel)
