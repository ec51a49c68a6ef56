"""The embedded registry's GRPC checks with Consul's TLS semantics, against real TLS servers
(certificates made with `cryptography`): GRPCUseTLS verifies against the registry's CA,
TLSSkipVerify accepts any certificate, TLSServerName names the one to verify, a plaintext check
of a TLS server fails."""

from __future__ import annotations

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tests.support import eventually_async, run
from tests.tls.certs import CA
from workmesh.registry import EmbeddedRegistry


async def _tls_health_server(pair) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_secure_port(
        "127.0.0.1:0", grpc.ssl_server_credentials([(pair.key.read_bytes(), pair.cert.read_bytes())])
    )
    await server.start()
    await servicer.set("svc", health_pb2.HealthCheckResponse.SERVING)
    return server, port


async def _status(http, base: str, service_id: str) -> str:
    async with http.get(f"{base}/v1/agent/checks") as reply:
        checks = await reply.json()
    return next((c["Status"] for c in checks.values() if c["ServiceID"] == service_id), "")


@pytest.mark.parametrize(
    "registry_ca, check, expected",
    [
        (True, {"GRPCUseTLS": True}, "passing"),  # verified against the CA
        (False, {"GRPCUseTLS": True}, "critical"),  # system CAs do not know it
        (False, {"GRPCUseTLS": True, "TLSSkipVerify": True}, "passing"),  # not verified
        (True, {"GRPCUseTLS": True, "TLSServerName": "other.example"}, "critical"),  # wrong name
        (True, {"GRPCUseTLS": True, "TLSServerName": "worker"}, "passing"),
        (True, {}, "critical"),  # plaintext to a TLS server
    ],
)
def test_grpc_checks_of_a_tls_server(tmp_path, registry_ca, check, expected):
    ca = CA(tmp_path)
    pair = ca.issue("worker")

    async def main():
        server, port = await _tls_health_server(pair)
        registry = EmbeddedRegistry(ca_file=str(ca.pem) if registry_ca else "")
        await registry.start()
        base = f"http://{registry.address}"
        try:
            async with aiohttp.ClientSession() as http:
                body = {
                    "Name": "svc",
                    "ID": "svc-1",
                    "Address": "127.0.0.1",
                    "Port": port,
                    "Check": {
                        "GRPC": f"127.0.0.1:{port}/svc",
                        "Interval": "1s",
                        "Status": "critical" if expected == "passing" else "passing",
                        **check,
                    },
                }
                async with http.put(f"{base}/v1/agent/service/register", json=body) as reply:
                    assert reply.status == 200, await reply.text()

                async def settled():
                    return await _status(http, base, "svc-1") == expected

                await eventually_async(settled, timeout=15, interval=0.1)
        finally:
            await registry.stop()
            await server.stop(0)

    run(main())
