"""A real gateway with authentication on: every RPC, streams included, needs a token; health
does not; off by default, and the gateway says which at start-up."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.auth.keys import SECRET, hs256
from tests.gateway.mesh import Mesh
from tests.support import run
from workmesh.services.core.auth import AuthConfig, JwtConfig, bearer_interceptors
from workmesh.services.gateway import GatewayConfig
from workmesh.v1 import gateway_pb2 as g
from workmesh.v1 import gateway_pb2_grpc

AUTH = AuthConfig(enabled=True, jwt=JwtConfig(secret=SECRET))


def test_gateway_calls_need_a_token_when_auth_is_on():
    async def main():
        async with Mesh(auth=AUTH) as mesh:
            stub = mesh.stub
            calls = {
                "ListWorkflowTypes": lambda md: stub.ListWorkflowTypes(g.ListWorkflowTypesRequest(), metadata=md),
                "GetJob": lambda md: stub.GetJob(g.GetJobRequest(job_id="x"), metadata=md),
                "WatchWorkflowTypes": lambda md: _first(
                    stub.WatchWorkflowTypes(g.WatchWorkflowTypesRequest(), metadata=md)
                ),
                "RunJobs": lambda md: _first(stub.RunJobs(iter([g.RunJobsRequest()]), metadata=md)),
            }
            for name, call in calls.items():
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await call(None)
                assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED, name
            md = (("authorization", f"Bearer {hs256()}"),)
            await calls["ListWorkflowTypes"](md)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await calls["GetJob"](md)
            assert info.value.code() == grpc.StatusCode.NOT_FOUND
            reply = await health_pb2_grpc.HealthStub(mesh.channel).Check(health_pb2.HealthCheckRequest())
            assert reply.status == health_pb2.HealthCheckResponse.SERVING

    run(main())


async def _first(call):
    async for item in call:
        return item
    return None


def test_auth_is_off_by_default_and_read_from_the_environment():
    assert not GatewayConfig().auth.enabled and not GatewayConfig.from_env({}).auth.enabled
    config = GatewayConfig.from_env({"WORKMESH_AUTH": "on", "WORKMESH_JWT_SECRET": SECRET})
    assert config.auth.enabled and config.auth.jwt.secret == SECRET


def test_the_http_api_needs_the_same_token():
    import aiohttp

    from workmesh.services.gateway.http import HttpConfig

    async def main():
        async with Mesh(auth=AUTH, http=HttpConfig(address="127.0.0.1:0")) as mesh:
            base = mesh.gateway.http.url.rstrip("/")
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/v1/types") as reply:
                    assert reply.status == 401
                    body = await reply.json()
                    assert body["code"] == grpc.StatusCode.UNAUTHENTICATED.value[0]
                    assert "missing credentials" in body["message"]
                token = hs256(ttl=-60)
                async with http.get(f"{base}/v1/types", headers={"Authorization": f"Bearer {token}"}) as reply:
                    assert reply.status == 401 and token not in await reply.text()
                async with http.get(f"{base}/v1/types", headers={"Authorization": f"Bearer {hs256()}"}) as reply:
                    assert reply.status == 200
                async with http.get(f"{base}/v1/openapi.json") as reply:
                    assert reply.status == 200
                async with http.get(f"{base}/healthz") as reply:
                    assert reply.status == 200

    run(main())


def test_http_routes_apply_the_same_rules():
    import aiohttp

    from workmesh.services.gateway.http import HttpConfig
    from workmesh.workers.examples.basic import echo

    async def main():
        async with Mesh(auth=AUTH, http=HttpConfig(address="127.0.0.1:0")) as mesh:
            base = mesh.gateway.http.url.rstrip("/")

            def auth(**kw):
                return {"Authorization": f"Bearer {hs256(**kw)}"}

            await mesh.add_worker([echo])
            channel = grpc.aio.insecure_channel(
                f"127.0.0.1:{mesh.port}", interceptors=bearer_interceptors(hs256(scope="admin"))
            )
            mesh.stub = gateway_pb2_grpc.GatewayStub(channel)
            await mesh.wait_instances("echo", 1)
            await channel.close()
            async with aiohttp.ClientSession() as http:
                async with http.post(
                    f"{base}/v1/jobs",
                    headers=auth(),
                    json={"workflowType": "echo", "params": {"message": {"stringValue": "x"}}},
                ) as reply:
                    assert reply.status == 200, await reply.text()
                    job = (await reply.json())["job"]
                    assert (job["tenant"], job["user"]) == ("acme", "alice")
                url = f"{base}/v1/jobs/{job['jobId']}"
                for headers, status in [(auth(), 200), (auth(tenant="globex"), 404), (auth(sub="bob"), 403)]:
                    async with http.get(url, headers=headers) as reply:
                        assert reply.status == status, (headers, await reply.text())
                async with http.get(f"{url}/series", headers=auth()) as reply:
                    assert reply.status == 403 and "series:read" in (await reply.json())["message"]

    run(main())
