"""The auth interceptor on a real grpc.aio server: every kind of call (unary, server stream as an
async generator, bidirectional stream writing through the context) is authenticated, the
handler sees the caller, failures are UNAUTHENTICATED with the reason, tokens never logged."""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tests.auth.calls import stream_call
from tests.auth.keys import SECRET, hs256
from tests.support import run
from workmesh.services.core.auth import (
    AuthConfig,
    Authenticator,
    AuthInterceptor,
    JwtConfig,
    MemoryTokens,
    current_identity,
    new_token,
)


def _who() -> bytes:
    identity = current_identity()
    return f"{identity.tenant}/{identity.subject}".encode()


async def _unary(request, context):
    return _who()


async def _server_stream(request, context):
    for _ in range(2):
        await asyncio.sleep(0)
        yield _who()


async def _bidi(request_iterator, context):
    async for _ in request_iterator:
        # A task started by the handler sees the caller too (RunJobs follows jobs in tasks).
        await context.write(await asyncio.get_running_loop().create_task(_async_who()))


async def _async_who():
    return _who()


class Server:
    def __init__(self, cache_seconds: float = 5.0) -> None:
        self.tokens = MemoryTokens()
        self.config = AuthConfig(enabled=True, jwt=JwtConfig(secret=SECRET), token_cache_seconds=cache_seconds)

    async def __aenter__(self):
        self.server = grpc.aio.server(interceptors=[AuthInterceptor(Authenticator(self.config, self.tokens))])
        handlers = {
            "Unary": grpc.unary_unary_rpc_method_handler(_unary),
            "Stream": grpc.unary_stream_rpc_method_handler(_server_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(_bidi),
        }
        self.server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("test.Who", handlers)])
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        return self

    async def __aexit__(self, *exc):
        await self.channel.close()
        await self.server.stop(0)

    async def calls(self, token: str | None) -> list[bytes]:
        """The three kinds of call with `token`; their answers."""
        metadata = (("authorization", f"Bearer {token}"),) if token is not None else None
        unary = await self.channel.unary_unary("/test.Who/Unary")(b"", metadata=metadata)
        stream = [m async for m in self.channel.unary_stream("/test.Who/Stream")(b"", metadata=metadata)]
        bidi = self.channel.stream_stream("/test.Who/Bidi")(metadata=metadata)
        await bidi.write(b"")
        await bidi.done_writing()
        return [unary, *stream, *[m async for m in bidi]]

    async def refused(self, token: str | None, metadata=None) -> list[str]:
        """Each kind of call is UNAUTHENTICATED; their messages."""
        messages = []
        for method in ("Unary", "Stream", "Bidi"):
            md = metadata or ((("authorization", f"Bearer {token}"),) if token is not None else None)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                if method == "Unary":
                    await self.channel.unary_unary("/test.Who/Unary")(b"", metadata=md)
                elif method == "Stream":
                    async for _ in self.channel.unary_stream("/test.Who/Stream")(b"", metadata=md):
                        pass
                else:
                    await stream_call(self.channel.stream_stream("/test.Who/Bidi")(metadata=md), b"")
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED, method
            messages.append(info.value.details())
        return messages


def test_every_kind_of_call_knows_its_caller():
    async def main():
        async with Server() as s:
            assert await s.calls(hs256(sub="alice", tenant="acme")) == [b"acme/alice"] * 4
            plain, record = new_token("globex", "ci", ["jobs:read"])
            await s.tokens.create_token(record)
            assert await s.calls(plain) == [b"globex/token:ci"] * 4

    run(main())


def test_calls_without_valid_credentials_are_unauthenticated_with_the_reason(caplog):
    caplog.set_level(logging.DEBUG)

    async def main():
        async with Server(cache_seconds=0) as s:
            assert all("missing credentials" in m for m in await s.refused(None))
            expired = hs256(ttl=-60)
            messages = await s.refused(expired)
            assert all("expired" in m and expired not in m for m in messages)
            assert all("Bearer scheme" in m for m in await s.refused(None, (("authorization", "Basic abc"),)))
            plain, record = new_token("acme", "ci", ["jobs:read"])
            await s.tokens.create_token(record)
            await s.tokens.revoke_token(record.token_id, time.time())
            assert all("revoked" in m for m in await s.refused(plain))
            # The health service answers without credentials (Consul's check has none).
            await s.health.set("", health_pb2.HealthCheckResponse.SERVING)
            reply = await health_pb2_grpc.HealthStub(s.channel).Check(health_pb2.HealthCheckRequest())
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            return expired, plain

    expired, plain = run(main())
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert expired not in logged and plain not in logged and plain[21:] not in logged
