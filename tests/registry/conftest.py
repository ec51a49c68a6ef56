"""Fixtures of the registry tests: async test functions, registry backends, gRPC health targets.

Backends: every conformance case runs against the embedded registry and against a real Consul
— the one ``CONSUL_HTTP_ADDR`` points at, or ``consul agent -dev`` started here when a
``consul`` binary is on PATH. Without either, the Consul cases skip and say so.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import signal
import subprocess
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tests.support import eventually, free_port, run
from workmesh.registry import EmbeddedRegistry, RegistryConfig
from workmesh.services.core.children import die_with_parent, spawn


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "embedded_only: exercises behaviour a real Consul cannot show quickly or at all "
        "here (1-minute DeregisterCriticalServiceAfter minimum, restarting the registry)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests with :func:`tests.support.run`, as every other async test runs."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        run(pyfuncitem.obj(**kwargs))
        return True
    return None


# -- a real Consul, when there is one -------------------------------------------------------------
NO_CONSUL = "no real Consul here: CONSUL_HTTP_ADDR is unset and no `consul` binary is on PATH"


def _leader(address: str) -> str:
    with urllib.request.urlopen(f"http://{address}/v1/status/leader", timeout=2) as reply:
        return reply.read().decode()


@pytest.fixture(scope="session")
def real_consul(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryConfig]:
    """How to reach a real Consul agent; skips when none is available."""
    if os.environ.get("CONSUL_HTTP_ADDR"):
        yield RegistryConfig.from_env()
        return
    binary = shutil.which("consul")
    if binary is None:
        pytest.skip(NO_CONSUL)
    workdir = tmp_path_factory.mktemp("consul")
    http = free_port()
    # -dev keeps everything in memory; every port is free or disabled so parallel runs coexist.
    args = [
        binary,
        "agent",
        "-dev",
        "-bind=127.0.0.1",
        "-client=127.0.0.1",
        f"-http-port={http}",
        "-dns-port=-1",
        "-grpc-port=-1",
        "-grpc-tls-port=-1",
        f"-serf-lan-port={free_port()}",
        f"-serf-wan-port={free_port()}",
        f"-server-port={free_port()}",
    ]
    log_path = workdir / "consul.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed when the agent is stopped
    command = [*die_with_parent(signal.SIGKILL), *args]  # killed by the kernel if the test process dies
    proc = spawn(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True)

    def elected() -> str:
        if proc.poll() is not None:
            raise RuntimeError(f"consul agent exited ({proc.returncode}): {log_path.read_text()[-2000:]}")
        try:
            return _leader(f"127.0.0.1:{http}").strip('"')
        except OSError:  # not listening yet
            return ""

    try:
        eventually(elected, timeout=30, interval=0.2)
        yield RegistryConfig(address=f"127.0.0.1:{http}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()


class Backend:
    """A registry to run a test against: ``embedded`` (started in the test's loop) or ``consul``."""

    def __init__(self, kind: str, config: RegistryConfig | None = None) -> None:
        self.kind, self.config = kind, config

    @property
    def embedded(self) -> bool:
        return self.kind == "embedded"

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RegistryConfig]:
        if self.embedded:
            async with EmbeddedRegistry() as registry:
                yield registry.config
        else:
            assert self.config is not None
            yield self.config

    def __repr__(self) -> str:
        return self.kind


@pytest.fixture(params=["embedded", "consul"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each conformance case runs once per backend; the Consul one skips without Consul."""
    if request.param == "consul":
        return Backend("consul", request.getfixturevalue("real_consul"))
    return Backend("embedded")


def unique(prefix: str = "wmtest") -> str:
    """A service name no other test (or earlier run against a shared Consul) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -- raw HTTP API -------------------------------------------------------------------------------------
class Api:
    """Plain HTTP calls to the registry's API; deregisters what it registered on exit."""

    def __init__(self, config: RegistryConfig) -> None:
        self.config = config
        headers = {"X-Consul-Token": config.token} if config.token else None
        self.session = aiohttp.ClientSession(
            base_url=config.url, headers=headers, timeout=aiohttp.ClientTimeout(total=60)
        )
        self.registered: list[str] = []
        self.checks: list[str] = []

    async def put(
        self, path: str, body: Any = None, *, raw: bytes | None = None, params: dict[str, str] | None = None
    ) -> tuple[int, str]:
        data = raw if raw is not None else (None if body is None else json.dumps(body))
        async with self.session.put(path, data=data, params=params) as reply:
            return reply.status, await reply.text()

    async def get(self, path: str, **params: Any) -> tuple[int, Any, int]:
        """(status, decoded JSON or text, X-Consul-Index or 0)."""
        query = {k: str(v) for k, v in params.items() if v is not None}
        async with self.session.get(path, params=query) as reply:
            text = await reply.text()
            body = await reply.json(content_type=None) if reply.status == 200 else text
            return reply.status, body, int(reply.headers.get("X-Consul-Index", 0))

    async def register(self, body: dict[str, Any], **params: str) -> None:
        status, text = await self.put("/v1/agent/service/register", body, params=params or None)
        assert status == 200, f"register failed: {status} {text}"
        self.registered.append(body.get("ID") or body["Name"])

    async def deregister(self, service_id: str) -> int:
        status, _ = await self.put(f"/v1/agent/service/deregister/{service_id}")
        return status

    async def health(self, name: str, **params: Any) -> list[dict[str, Any]]:
        status, body, _ = await self.get(f"/v1/health/service/{name}", **params)
        assert status == 200, body
        return body

    async def check_status(self, check_id: str) -> str | None:
        _, checks, _ = await self.get("/v1/agent/checks")
        return checks.get(check_id, {}).get("Status")

    async def register_check(self, body: dict[str, Any]) -> tuple[int, str]:
        """``PUT /v1/agent/check/register``; a check it accepted is deregistered on exit."""
        status, text = await self.put("/v1/agent/check/register", body)
        if status == 200:
            self.checks.append(body.get("CheckID") or body.get("ID") or body["Name"])
        return status, text

    async def close(self) -> None:
        for check_id in self.checks:
            with contextlib.suppress(aiohttp.ClientError):
                await self.put(f"/v1/agent/check/deregister/{check_id}")
        for service_id in self.registered:
            with contextlib.suppress(aiohttp.ClientError):
                await self.deregister(service_id)
        await self.session.close()


@contextlib.asynccontextmanager
async def api_for(config: RegistryConfig) -> AsyncIterator[Api]:
    api = Api(config)
    try:
        yield api
    finally:
        await api.close()


# -- a real gRPC health server ------------------------------------------------------------------------
class _CountingHealth(health.aio.HealthServicer):
    """The standard health servicer, counting the Check calls (the registry's probes)."""

    def __init__(self) -> None:
        super().__init__()
        self.probes = 0

    async def Check(self, request, context):  # noqa: N802 - gRPC method name
        self.probes += 1
        return await super().Check(request, context)


class HealthTarget:
    """A grpc.aio server with the standard health service, on a free loopback port."""

    def __init__(self) -> None:
        self.server: grpc.aio.Server | None = None
        self.servicer = _CountingHealth()
        self.port = 0

    @property
    def probes(self) -> int:
        """How many Health/Check calls it has answered."""
        return self.servicer.probes

    async def start(self, port: int = 0) -> HealthTarget:
        self.server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, self.server)
        self.port = self.server.add_insecure_port(f"127.0.0.1:{port}")
        await self.server.start()
        return self

    async def set(self, service: str, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        await self.servicer.set(service, status)

    async def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            await server.stop(0)


@contextlib.asynccontextmanager
async def health_target(*serving: str) -> AsyncIterator[HealthTarget]:
    """A health server on a free port whose `serving` services answer SERVING."""
    target = await HealthTarget().start()
    try:
        for service in serving:
            await target.set(service, True)
        yield target
    finally:
        await target.stop()
