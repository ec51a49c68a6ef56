"""One ``RunSteps`` stream per attempt of a parent job: its ``ctx.step`` calls as messages.

A unary RunStep per step pays a whole call each time (its setup on both sides, the metadata,
the auth interceptor); a sequential step is a round trip of the worker's handler through the
gateway, so it counts. The attempt's first step opens the stream (with the metadata a RunStep
would carry: the attempt's capability when authentication is on); each step is a request with
its own ``call_id``, answered by the reply with that id once the step has ended, so steps in
parallel share the stream. A step refused by the gateway is answered with the status RunStep
would have ended with (:class:`StepRefused`); a stream that breaks fails its pending steps with
its status, and the next step opens a new one. A gateway without RunSteps (UNIMPLEMENTED) is
asked with RunStep from then on. The attempt's end closes its stream (:func:`close`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

import grpc

from workmesh.v1 import gateway_pb2, gateway_pb2_grpc

__all__ = ["StepRefused", "StepStream", "close", "stream_of"]

_streams: dict[tuple[int, str, int], StepStream] = {}


class StepRefused(Exception):
    """A step answered on the stream with a status other than OK (as ``AioRpcError`` would be)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


_CODES = {code.value[0]: code for code in grpc.StatusCode}


class StepStream:
    """The RunSteps stream of one parent attempt (opened at its first step, again after a break).

    Args:
        stub: the gateway's stub.
        metadata: the stream's metadata (RunStep's: the attempt's capability), or None.
    """

    def __init__(self, stub: gateway_pb2_grpc.GatewayStub, metadata) -> None:
        self._stub = stub
        self._metadata = metadata
        self._call: Any = None  # the grpc.aio stream-stream call open now
        self._reader: asyncio.Task | None = None
        self._pending: dict[int, tuple[asyncio.Future, object]] = {}
        self._ids = itertools.count(1)
        self._writing = asyncio.Lock()
        self._closed = False
        self._cancelling: asyncio.Future | None = None  # the last cancel request being written

    def _open(self) -> Any:
        if self._call is None:
            call = self._stub.RunSteps(metadata=self._metadata, wait_for_ready=False)
            self._call = call
            self._reader = asyncio.ensure_future(self._read(call))
        return self._call

    async def ask(self, request: gateway_pb2.RunStepRequest) -> gateway_pb2.RunStepResponse:
        """The step's answer.

        Raises:
            grpc.aio.AioRpcError: the stream ended (e.g. UNAVAILABLE: the gateway restarts).
            StepRefused: the gateway refused the step (its status, as RunStep's).
        """
        if self._closed:
            raise StepRefused(grpc.StatusCode.CANCELLED, "the attempt has ended: no more steps")
        call = self._open()
        call_id = next(self._ids)
        request.call_id = call_id
        future = asyncio.get_running_loop().create_future()
        self._pending[call_id] = (future, call)
        try:
            try:
                async with self._writing:
                    await call.write(request)
            except grpc.aio.AioRpcError:
                raise
            except Exception:  # noqa: BLE001 - the call ended meanwhile: its status is the answer
                code = await call.code()
                if code == grpc.StatusCode.OK:  # the gateway ended the stream: ask again
                    code = grpc.StatusCode.UNAVAILABLE
                raise StepRefused(code, await call.details() or "the step stream ended") from None
            reply = await future
        except asyncio.CancelledError:
            if self._call is call and not call.done():  # the handler went away: tell the gateway
                self._cancelling = asyncio.ensure_future(self._cancel(call, call_id))
            raise
        finally:
            self._pending.pop(call_id, None)
        if reply.status_code:
            raise StepRefused(_CODES.get(reply.status_code, grpc.StatusCode.UNKNOWN), reply.status_message)
        return reply.response

    async def _cancel(self, call, call_id: int) -> None:
        with contextlib.suppress(Exception):
            async with self._writing:
                await call.write(gateway_pb2.RunStepRequest(call_id=call_id, cancel=True))

    async def _read(self, call) -> None:
        error: BaseException
        try:
            async for reply in call:
                entry = self._pending.get(reply.call_id)
                if entry is not None and not entry[0].done():
                    entry[0].set_result(reply)
            error = StepRefused(grpc.StatusCode.UNAVAILABLE, "the gateway ended the step stream")
        except grpc.aio.AioRpcError as exc:
            error = exc
        except asyncio.CancelledError:
            error = StepRefused(grpc.StatusCode.CANCELLED, "the step stream was closed")
        if self._call is call:
            self._call = None
        for future, of in list(self._pending.values()):
            if of is call and not future.done():
                future.set_exception(error)

    def close(self) -> None:
        """End the stream (the attempt has ended)."""
        self._closed = True
        if self._call is not None:
            self._call.cancel()
            self._call = None


def stream_of(job_id: str, attempt: int, stub, metadata) -> StepStream:
    """The step stream of that attempt of a job (made at its first step)."""
    key = (id(asyncio.get_running_loop()), job_id, attempt)
    stream = _streams.get(key)
    if stream is None:
        stream = _streams[key] = StepStream(stub, metadata)
    return stream


def close(loop: asyncio.AbstractEventLoop, job_id: str, attempt: int) -> None:
    """The attempt has ended: close its step stream, if it opened one."""
    stream = _streams.pop((id(loop), job_id, attempt), None)
    if stream is not None:
        stream.close()
