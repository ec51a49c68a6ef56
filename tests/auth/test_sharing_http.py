"""workmesh.v1.Sharing over the HTTP API with authentication on (a real gateway and HTTP server):
alice shares a job (``POST /v1/jobs/{id}:share``) and a label (``POST /v1/shares``) with bob, bob
reads the job and lists the shares, alice unshares (``DELETE /v1/shares/{id}``) and bob is refused
again; bad input is the gRPC call's status as google.rpc.Status JSON, nothing stored."""

from __future__ import annotations

import grpc

from tests.auth.keys import hs256
from tests.auth.test_gateway_auth import AUTH
from tests.gateway.mesh import Mesh
from tests.support import run
from workmesh.services.core.auth import bearer_interceptors
from workmesh.v1 import gateway_pb2_grpc


def test_share_list_unshare_over_http():
    import aiohttp

    from workmesh.services.gateway.http import HttpConfig
    from workmesh.workers.examples.basic import echo

    alice = {"Authorization": f"Bearer {hs256()}"}
    bob = {"Authorization": f"Bearer {hs256(sub='bob')}"}

    async def main():
        async with Mesh(auth=AUTH, http=HttpConfig(address="127.0.0.1:0")) as mesh:
            base = mesh.gateway.http.url.rstrip("/")
            await mesh.add_worker([echo])
            channel = grpc.aio.insecure_channel(
                f"127.0.0.1:{mesh.port}", interceptors=bearer_interceptors(hs256(scope="admin"))
            )
            mesh.stub = gateway_pb2_grpc.GatewayStub(channel)
            await mesh.wait_instances("echo", 1)
            await channel.close()
            async with aiohttp.ClientSession() as http:

                async def call(method, path, headers, body=None):
                    async with http.request(method, f"{base}{path}", headers=headers, json=body) as reply:
                        return reply.status, await reply.json()

                submit = {"workflowType": "echo", "params": {"message": {"stringValue": "x"}}, "labels": {"p": "h"}}
                status, body = await call("POST", "/v1/jobs", alice, submit)
                assert status == 200, body
                job = body["job"]["jobId"]
                assert (await call("GET", f"/v1/jobs/{job}", bob))[0] == 403

                status, share = await call("POST", f"/v1/jobs/{job}:share", alice, {"grantee": "bob"})
                assert status == 200, share
                seen = (share["jobId"], share["grantee"], share["manage"], share["owner"])
                assert seen == (job, "bob", False, "alice")
                status, label = await call("POST", "/v1/shares", alice, {"label": "p=h", "grantee": "bob"})
                assert status == 200 and (label["label"], label["jobId"]) == ("p=h", ""), label
                assert (await call("GET", f"/v1/jobs/{job}", bob))[0] == 200
                status, listed = await call("GET", "/v1/shares", bob)
                assert status == 200
                assert [s["shareId"] for s in listed["shares"]] == [share["shareId"], label["shareId"]]
                status, only = await call("GET", f"/v1/shares?job_id={job}", alice)
                assert [s["shareId"] for s in only["shares"]] == [share["shareId"]]
                # the grantee cannot take a share back; the owner can, effective at once
                status, body = await call("DELETE", f"/v1/shares/{share['shareId']}", bob)
                assert (status, body["code"]) == (403, grpc.StatusCode.PERMISSION_DENIED.value[0]), body
                for s in (share, label):
                    status, gone = await call("DELETE", f"/v1/shares/{s['shareId']}", alice)
                    assert status == 200 and gone["shareId"] == s["shareId"]
                assert (await call("GET", f"/v1/jobs/{job}", bob))[0] == 403
                status, body = await call("DELETE", f"/v1/shares/{share['shareId']}", alice)
                assert (status, body["code"]) == (404, grpc.StatusCode.NOT_FOUND.value[0]), body

                # bad input: the gRPC status and message, naming the field; nothing stored
                status, body = await call("POST", "/v1/jobs/no-such-job:share", alice, {"grantee": "bob"})
                assert (status, body["code"]) == (404, grpc.StatusCode.NOT_FOUND.value[0]), body
                assert "no-such-job" in body["message"]
                status, body = await call("POST", "/v1/shares", alice, {"label": "no-equals", "grantee": "bob"})
                assert (status, body["code"]) == (400, grpc.StatusCode.INVALID_ARGUMENT.value[0]), body
                assert body["message"].startswith("label"), body
                status, body = await call("POST", f"/v1/jobs/{job}:share", alice, {"grantee": "bob", "colour": 1})
                assert status == 400 and "colour" in body["message"], body
                assert (await call("GET", "/v1/shares", alice))[1]["shares"] == []

                # a tenant-wide label share: jobs:manage only; alice sees it (it covers her jobs)
                ops = {"Authorization": f"Bearer {hs256(sub='ops', scope='jobs:read jobs:submit jobs:manage')}"}
                wide = {"label": "p=h", "grantee": "bob", "tenantWide": True}
                status, body = await call("POST", "/v1/shares", alice, wide)
                assert (status, body["code"]) == (403, grpc.StatusCode.PERMISSION_DENIED.value[0]), body
                assert "'jobs:manage'" in body["message"], body
                status, share = await call("POST", "/v1/shares", ops, wide)
                assert status == 200 and (share["tenant"], share.get("owner", "")) == ("acme", ""), share
                assert (await call("GET", f"/v1/jobs/{job}", bob))[0] == 200
                status, listed = await call("GET", "/v1/shares", alice)
                assert [s["shareId"] for s in listed["shares"]] == [share["shareId"]], listed
                assert (await call("DELETE", f"/v1/shares/{share['shareId']}", ops))[0] == 200
                assert (await call("GET", f"/v1/jobs/{job}", bob))[0] == 403

    run(main())
