"""Client-streaming calls in the auth tests: their own status, even when refused early."""

from __future__ import annotations

import contextlib

import grpc


async def stream_call(call, *messages) -> list:
    """Write `messages`, half-close, read every reply; raise the call's own status if not OK.

    The server may end a refused call before the client's write goes out; the write then fails
    on the client's side (INTERNAL, "Failed execute_batch"), so the status is read from the call.
    """
    with contextlib.suppress(grpc.aio.AioRpcError, grpc.aio.UsageError):
        for message in messages:
            await call.write(message)
        await call.done_writing()
    replies = []
    with contextlib.suppress(grpc.aio.AioRpcError):
        replies = [reply async for reply in call]
    code = await call.code()
    if code != grpc.StatusCode.OK:
        raise grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=await call.details())
    return replies
