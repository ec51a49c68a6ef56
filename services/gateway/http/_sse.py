"""Server-Sent Events: one response per stream, counted, with heartbeats and a clean end.

A stream is written by :func:`serve_sse` from an async iterator of encoded chunks (one or more
:class:`Event` each: whatever was ready at once goes out in one write). When the
client goes away, aiohttp cancels the handler (the app runs with ``handler_cancellation``) or the
next write fails; either way the iterator is closed at once, so the servicer's generator behind it
runs its ``finally`` and releases its subscription. :class:`StreamCounter` holds how many streams
are open now (``/readyz`` and the tests read it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from aiohttp import web

from workmesh.services.gateway.http._calls import CallError


@dataclass(frozen=True, slots=True)
class Event:
    """One SSE event: ``event:`` name, ``data:`` (JSON), optional ``id:``."""

    name: str
    data: dict
    id: str = ""

    def encode(self) -> bytes:
        head = f"id: {self.id}\n" if self.id else ""
        # Compact JSON has no newlines, so one data line is always enough.
        return f"{head}event: {self.name}\ndata: {json.dumps(self.data, separators=(',', ':'))}\n\n".encode()


class StreamCounter:
    """How many SSE streams are open, and how many were opened since start."""

    def __init__(self) -> None:
        self.open = 0
        self.total = 0


async def serve_sse(
    request: web.Request, chunks: AsyncGenerator[bytes, None], *, heartbeat: float, counter: StreamCounter
) -> web.StreamResponse:
    """Write `chunks` (encoded events, see :meth:`Event.encode`) to the client as
    text/event-stream, one write each, until they end or the client leaves.

    An error the iterator raises after the headers went out is sent as a last ``error`` event
    (its data a google.rpc.Status) before the stream ends. A comment line goes out after
    `heartbeat` quiet seconds, so that proxies keep the connection and a gone client is noticed.
    """
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    counter.open += 1
    counter.total += 1
    iterator = chunks
    pending: asyncio.Future | None = None
    try:
        await response.prepare(request)
        await response.write(b": stream open\n\n")
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait((pending,), timeout=heartbeat)
            if not done:
                await response.write(b": keep-alive\n\n")
                continue
            finished, pending = pending, None
            try:
                chunk = finished.result()
            except StopAsyncIteration:
                break
            except CallError as exc:
                await response.write(Event("error", exc.json()).encode())
                break
            await response.write(chunk)
        await response.write_eof()
    except ConnectionError:
        pass  # the client went away: nothing more to send
    finally:
        # Also on cancellation (the client disconnected): stop the read in flight, then close
        # the iterator so that the servicer's generator behind it releases what it holds.
        counter.open -= 1
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        with contextlib.suppress(Exception):
            await iterator.aclose()
    return response
