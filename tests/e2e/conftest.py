"""End-to-end fixtures: a whole mesh of real processes on loopback ports."""

from __future__ import annotations

import grpc
import pytest

from workmesh.services.devmesh import DevMesh
from workmesh.v1 import gateway_pb2_grpc

BASIC = "workmesh.workers.examples.basic:worker"
HEAT = "workmesh.workers.examples.heat_demand:worker"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    """Registry + gateway + two workers of different types, shared by a module's tests."""
    tmp = tmp_path_factory.mktemp("mesh")
    with DevMesh(workers=(HEAT, BASIC), results=False, data_dir=tmp, log_dir=tmp) as started:
        yield started


@pytest.fixture
def fresh_mesh(tmp_path):
    """A mesh of its own for tests that stop or kill its processes."""
    with DevMesh(workers=(), results=False, data_dir=tmp_path, log_dir=tmp_path) as started:
        yield started


@pytest.fixture
def gateway(mesh):
    with grpc.insecure_channel(mesh.gateway_address) as channel:
        yield gateway_pb2_grpc.GatewayStub(channel)
