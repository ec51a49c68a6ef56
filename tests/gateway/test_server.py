"""GatewayConfig from the environment, and ``serve`` as a process: binds, logs its address,
registers as workmesh-gateway, stops gracefully on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.request

import grpc
import pytest

from tests.support import eventually_async, free_port, run
from workmesh.registry import EmbeddedRegistry, find_service
from workmesh.services.gateway import GatewayConfig
from workmesh.v1 import gateway_pb2, gateway_pb2_grpc

SERVE = (
    "import asyncio, logging; logging.basicConfig(level=logging.INFO); "
    "from workmesh.services.gateway import GatewayConfig, serve; "
    "asyncio.run(serve(GatewayConfig.from_env()))"
)


def test_config_defaults_and_env():
    default = GatewayConfig.from_env({})
    assert default.address == "127.0.0.1:50051" and default.database_url == ""
    assert default.registry.address == "127.0.0.1:8500"
    config = GatewayConfig.from_env(
        {
            "WORKMESH_GATEWAY_ADDR": "0.0.0.0:6000",
            "CONSUL_HTTP_ADDR": "https://consul.local:8501",
            "DATABASE_URL": "sqlite:///jobs.db",
            "WORKMESH_CANCEL_GRACE": "2.5",
        }
    )
    assert config.address == "0.0.0.0:6000" and config.registry.scheme == "https"
    assert config.registry.address == "consul.local:8501" and config.database_url == "sqlite:///jobs.db"
    assert config.cancel_grace == 2.5


@pytest.mark.parametrize(
    ("env", "word"),
    [
        ({"WORKMESH_GATEWAY_ADDR": "nonsense"}, "WORKMESH_GATEWAY_ADDR"),
        ({"WORKMESH_GATEWAY_ADDR": "127.0.0.1:99999"}, "WORKMESH_GATEWAY_ADDR"),
        ({"WORKMESH_CANCEL_GRACE": "soon"}, "WORKMESH_CANCEL_GRACE"),
        ({"WORKMESH_SHUTDOWN_GRACE": "-1"}, "WORKMESH_SHUTDOWN_GRACE"),
        ({"CONSUL_HTTP_ADDR": "no-port"}, "CONSUL_HTTP_ADDR"),
    ],
)
def test_bad_env_names_the_variable(env, word):
    with pytest.raises(ValueError, match=word):
        GatewayConfig.from_env(env)


def test_serve_registers_and_stops_gracefully(procs):
    async def main():
        async with EmbeddedRegistry() as registry:
            port = free_port()
            proc = procs.start(
                "-c",
                SERVE,
                name="gateway",
                env={
                    "WORKMESH_GATEWAY_ADDR": f"127.0.0.1:{port}",
                    "CONSUL_HTTP_ADDR": registry.address,
                    "WORKMESH_DATA_DIR": str(procs.log_dir / "data"),
                },
            )

            async def registered():
                return await find_service(registry.config, "workmesh-gateway")

            found = await eventually_async(registered, timeout=20)
            assert found[0].port == port
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                reply = await gateway_pb2_grpc.GatewayStub(channel).ListWorkflowTypes(
                    gateway_pb2.ListWorkflowTypesRequest()
                )
                assert list(reply.types) == []
            code = await asyncio.to_thread(procs.stop, proc, signal.SIGTERM)
            assert code == 0, procs.log_of(proc)
            log = procs.log_of(proc)
            assert f"127.0.0.1:{port}" in log and "gateway stopped" in log
            assert await find_service(registry.config, "workmesh-gateway") == []

    run(main())


@pytest.mark.parametrize(("advertise", "expected"), [("127.0.0.2", "127.0.0.2"), ("", "127.0.0.1")])
def test_the_registry_holds_the_advertised_address(procs, advertise, expected):
    # Regression (issue 8): in containers the gateway listens on 0.0.0.0 and the image's entrypoint
    # exports WORKMESH_GATEWAY_ADVERTISE, but nothing read it, so the registry held 127.0.0.1.
    async def main():
        async with EmbeddedRegistry() as registry:
            port = free_port()
            proc = procs.start(
                "-c",
                SERVE,
                name="gateway",
                env={
                    "WORKMESH_GATEWAY_ADDR": f"0.0.0.0:{port}",
                    "WORKMESH_GATEWAY_ADVERTISE": advertise,
                    "CONSUL_HTTP_ADDR": registry.address,
                    "DATABASE_URL": "memory://",
                },
            )

            async def registered():
                return await find_service(registry.config, "workmesh-gateway", passing=False)

            [entry] = await eventually_async(registered, timeout=20)
            assert (entry.address, entry.port) == (expected, port)

            target = f"{expected}:{port}/workmesh.v1.Gateway"

            async def probed_there():  # the registry's gRPC check has reached the gateway there
                checks = await asyncio.to_thread(agent_checks, registry.address)
                found = [(c["Status"], c["Output"]) for c in checks.values() if c["ServiceID"] == entry.service_id]
                return found == [("passing", f"gRPC check {target}: success")]

            await eventually_async(probed_there, timeout=20)
            assert await asyncio.to_thread(procs.stop, proc, signal.SIGTERM) == 0, procs.log_of(proc)
            assert f"advertised as {expected}:{port}" in procs.log_of(proc)

    run(main())


def agent_checks(registry: str) -> dict:
    with urllib.request.urlopen(f"http://{registry}/v1/agent/checks", timeout=5) as reply:
        return json.loads(reply.read())


def test_open_store_picks_memory_or_sql(tmp_path):
    from workmesh.services.gateway import MemoryJobStore
    from workmesh.services.gateway._server import open_store

    assert isinstance(open_store(GatewayConfig(database_url="memory://")), MemoryJobStore)
    sql = open_store(GatewayConfig(database_url=f"sqlite:///{tmp_path}/jobs.db"))
    assert type(sql).__name__ == "SqlJobStore"
    run(sql.close())
    # Durable by default: no DATABASE_URL means a SQLite file in the data directory.
    default = open_store(GatewayConfig(data_dir=str(tmp_path / "data")))
    assert type(default).__name__ == "SqlJobStore" and default.dialect == "sqlite"
    assert default.url.database == str(tmp_path / "data" / "jobs.db")
    run(default.close())
