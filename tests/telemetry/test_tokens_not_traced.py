"""Tokens never reach traces or logs: a gateway with authentication on runs a job for a JWT caller
and an API-token caller and refuses an expired JWT, a revoked API token and a forged one, while
every span and JSON log line is captured; none holds a token, a part of one, or any JWS (the
attempts' series write capabilities included)."""

from __future__ import annotations

import json
import time

import grpc

from tests.auth.keys import SECRET, hs256
from tests.gateway.mesh import Mesh, terminal
from tests.support import run
from workmesh.services.core.auth import AuthConfig, JwtConfig, bearer_interceptors, new_token
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g
from workmesh.v1 import gateway_pb2_grpc
from workmesh.workers.examples.basic import echo

SCOPES = "types:read jobs:submit jobs:read"


def secret_parts(token: str) -> list[str]:
    """The token and every long piece of it (a JWT's segments, an API token's secret)."""
    return [token, *(part for part in token.replace("_", ".").split(".") if len(part) > 8)]


def test_no_token_or_capability_appears_in_spans_or_logs(captured):
    good = hs256(sub="alice", tenant="acme", scope=SCOPES)
    expired = hs256(sub="alice", tenant="acme", scope=SCOPES, ttl=-60)
    forged = good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB")

    async def main():
        auth = AuthConfig(enabled=True, jwt=JwtConfig(secret=SECRET), token_cache_seconds=0, series_key="s" * 40)
        async with Mesh(auth=auth) as mesh:
            plain, record = new_token("acme", "ci", SCOPES.split())
            revoked, revoked_record = new_token("acme", "old", SCOPES.split())
            await mesh.store.create_token(record)
            await mesh.store.create_token(revoked_record)
            await mesh.store.revoke_token(revoked_record.token_id, time.time())
            await mesh.add_worker([echo])
            for token in (good, plain):
                async with grpc.aio.insecure_channel(
                    f"127.0.0.1:{mesh.port}", interceptors=bearer_interceptors(token)
                ) as channel:
                    stub = mesh.stub = gateway_pb2_grpc.GatewayStub(channel)
                    await mesh.wait_instances("echo", 1)
                    job = (await stub.SubmitJob(g.SubmitJobRequest(workflow_type="echo"))).job
                    events = [e async for e in stub.WatchJob(g.WatchJobRequest(job_id=job.job_id))]
                    assert terminal(events) == c.JOB_STATUS_SUCCEEDED
            for token in (expired, forged, revoked):
                async with grpc.aio.insecure_channel(
                    f"127.0.0.1:{mesh.port}", interceptors=bearer_interceptors(token)
                ) as channel:
                    stub = gateway_pb2_grpc.GatewayStub(channel)
                    try:
                        await stub.SubmitJob(g.SubmitJobRequest(workflow_type="echo"))
                    except grpc.aio.AioRpcError as exc:
                        assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
                    else:
                        raise AssertionError("a refused token was accepted")
            return plain, revoked

    plain, revoked = run(main())
    captured.telemetry.force_flush()
    spans = captured.spans.get_finished_spans()
    assert any(s.name == "job.attempt" for s in spans), "the attempts were traced"
    texts = []
    for span in spans:
        texts += [span.name, str(span.status.description or ""), json.dumps(dict(span.attributes or {}), default=str)]
        texts += [json.dumps(dict(e.attributes or {}), default=str) + e.name for e in span.events]
    logs = captured.logs.getvalue()
    assert "serving echo" in logs, "the log lines were captured"
    texts.append(logs)
    everything = "\n".join(texts)
    for token in (good, expired, forged, plain, revoked):
        leaked = [part for part in secret_parts(token) if part in everything]
        assert not leaked, f"a token's part is in a span or log line: {leaked[0][:12]}..."
    # No JWS at all: a JWT's header segment always starts with eyJ ('{"').
    assert "eyJ" not in everything
