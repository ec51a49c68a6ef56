"""The mesh with TLS and authentication on, in-process with real certificates: a TLS gateway,
a TLS worker whose registry check passes over TLS, jobs end to end; plaintext and unverified
clients are refused; a worker asking for client certificates (mutual TLS) takes the gateway's
and refuses a client without one."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.auth.keys import SECRET, hs256
from tests.support import eventually_async, run
from tests.tls.certs import CA
from workmesh.registry import EmbeddedRegistry
from workmesh.services.core.auth import AuthConfig, JwtConfig, bearer_interceptors
from workmesh.services.core.tls import TlsConfig
from workmesh.services.gateway import GatewayConfig, MemoryJobStore, create_server
from workmesh.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc
from workmesh.workers import Worker, WorkerConfig
from workmesh.workers.examples.basic import echo


@pytest.fixture
def pki(tmp_path):
    ca = CA(tmp_path)
    return ca, ca.issue("gateway"), ca.issue("worker")


def test_a_tls_gateway_with_authentication_refuses_plaintext_and_unverified_clients(pki):
    ca, gw_pair, _ = pki
    token = hs256(scope="types:read")

    async def main():
        registry = EmbeddedRegistry(ca_file=str(ca.pem))
        await registry.start()
        gw_tls = TlsConfig(cert_file=str(gw_pair.cert), key_file=str(gw_pair.key), ca_file=str(ca.pem))
        gateway, port = create_server(
            GatewayConfig(
                address="127.0.0.1:0",
                registry=registry.config,
                tls=gw_tls,
                auth=AuthConfig(enabled=True, jwt=JwtConfig(secret=SECRET)),
            ),
            store=MemoryJobStore(),
        )
        await gateway.start()
        credentials = grpc.ssl_channel_credentials(ca.pem.read_bytes())
        try:
            async with grpc.aio.secure_channel(
                f"127.0.0.1:{port}", credentials, interceptors=bearer_interceptors(token)
            ) as channel:
                await gateway_pb2_grpc.GatewayStub(channel).ListWorkflowTypes(gateway_pb2.ListWorkflowTypesRequest())
            async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await gateway_pb2_grpc.GatewayStub(channel).ListWorkflowTypes(
                        gateway_pb2.ListWorkflowTypesRequest()
                    )
                assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            for channel in (
                grpc.aio.insecure_channel(f"127.0.0.1:{port}"),
                grpc.aio.secure_channel(f"127.0.0.1:{port}", grpc.ssl_channel_credentials()),
            ):
                async with channel:
                    with pytest.raises(grpc.aio.AioRpcError) as info:
                        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
                    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        finally:
            await gateway.stop(0)
            await registry.stop()

    run(main())


def test_a_worker_asking_for_client_certificates_takes_only_those_of_its_ca(pki, tmp_path):
    ca, gw_pair, wk_pair = pki
    stranger = CA(tmp_path, name="other CA").issue("intruder")

    async def main():
        worker = Worker([echo], capacity=1)
        await worker.start(
            WorkerConfig(
                register=False,
                drain_grace=0.0,
                tls=TlsConfig(
                    cert_file=str(wk_pair.cert), key_file=str(wk_pair.key), ca_file=str(ca.pem), client_auth=True
                ),
            )
        )
        target = f"127.0.0.1:{worker.port}"
        try:
            gateway_side = TlsConfig(cert_file=str(gw_pair.cert), key_file=str(gw_pair.key), ca_file=str(ca.pem))
            async with gateway_side.aio_channel(target) as channel:
                reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
            for tls in (
                TlsConfig(ca_file=str(ca.pem)),  # no certificate
                TlsConfig(cert_file=str(stranger.cert), key_file=str(stranger.key), ca_file=str(ca.pem)),
            ):
                async with tls.aio_channel(target) as channel:
                    with pytest.raises(grpc.aio.AioRpcError) as info:
                        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
                    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            # `workmesh health` (the Kubernetes probe of such a worker, deploy/k8s) presents the
            # pod's certificate from WORKMESH_TLS_CERT/_KEY; with the CA alone it is refused.
            env = {**os.environ, "WORKMESH_TLS_CA": str(ca.pem), "WORKMESH_TLS_SERVER_NAME": "worker"}
            mutual = {**env, "WORKMESH_TLS_CERT": str(wk_pair.cert), "WORKMESH_TLS_KEY": str(wk_pair.key)}
            for environment, serving in ((mutual, True), (env, False)):
                probe = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "workmesh.services.cli",
                    "health",
                    target,
                    "--timeout",
                    "5",
                    env=environment,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
                out, errors = await asyncio.wait_for(probe.communicate(), 60)
                assert (probe.returncode == 0) == serving, (out, errors)
                assert b"SERVING" in out if serving else b"UNAVAILABLE" in errors, (out, errors)
        finally:
            await worker.stop(grace=0)

    run(main())


def test_a_tls_worker_serves_jobs_through_a_tls_gateway(pki):
    ca, gw_pair, wk_pair = pki

    async def main():
        registry = EmbeddedRegistry(ca_file=str(ca.pem))
        await registry.start()
        gw_tls = TlsConfig(cert_file=str(gw_pair.cert), key_file=str(gw_pair.key), ca_file=str(ca.pem))
        gateway, port = create_server(
            GatewayConfig(address="127.0.0.1:0", registry=registry.config, tls=gw_tls), store=MemoryJobStore()
        )
        await gateway.start()
        worker = Worker([echo], capacity=4)
        await worker.start(
            WorkerConfig(
                registry=registry.config,
                drain_grace=0.0,
                tls=TlsConfig(cert_file=str(wk_pair.cert), key_file=str(wk_pair.key)),
            )
        )
        channel = grpc.aio.secure_channel(f"127.0.0.1:{port}", grpc.ssl_channel_credentials(ca.pem.read_bytes()))
        try:
            stub = gateway_pb2_grpc.GatewayStub(channel)

            async def listed():
                types = (await stub.ListWorkflowTypes(gateway_pb2.ListWorkflowTypesRequest())).types
                return any(t.type.name == "echo" and t.healthy_instances == 1 for t in types)

            await eventually_async(listed, timeout=15)  # the registry's GRPCUseTLS check passes
            job = (
                await stub.SubmitJob(
                    gateway_pb2.SubmitJobRequest(
                        workflow_type="echo", params={"message": common_pb2.ParamValue(string_value="tls")}
                    )
                )
            ).job
            events = [e async for e in stub.WatchJob(gateway_pb2.WatchJobRequest(job_id=job.job_id))]
            assert events[-1].status.status == common_pb2.JOB_STATUS_SUCCEEDED
            result = next(e.result for e in events if e.HasField("result"))
            assert result.outputs["message"] == "tls"
            # The CLI with --ca.
            env = {**os.environ, "WORKMESH_TLS_CA": ""}
            done = await asyncio.to_thread(
                subprocess.run,
                [
                    sys.executable,
                    "-m",
                    "workmesh.services.cli",
                    "job",
                    job.job_id,
                    "--json",
                    "--gateway",
                    f"127.0.0.1:{port}",
                    "--ca",
                    str(ca.pem),
                ],
                capture_output=True,
                text=True,
                timeout=60,
                env=env,
            )
            assert done.returncode == 0, done.stderr
            assert '"JOB_STATUS_SUCCEEDED"' in done.stdout
            plain = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "workmesh.services.cli", "job", job.job_id, "--gateway", f"127.0.0.1:{port}"],
                capture_output=True,
                text=True,
                timeout=60,
                env=env,
            )
            assert plain.returncode != 0
        finally:
            await channel.close()
            await worker.stop(grace=0)
            await gateway.stop(0)
            await registry.stop()

    run(main())
