"""RunSteps: the steps of one parent attempt on one stream (see workers/_step_stream.py).

Each request is a RunStep of its own, run as a task (steps in parallel share the stream) and
answered by a RunStepReply with its ``call_id`` once it has ended: the response, or the status
RunStep would have ended with (``status_of`` of what it raised). A ``cancel`` request stops
waiting for that call (its child job runs on, as after a RunStep its caller cancelled). The
stream's metadata is RunStep's: the same checks run for every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from workmesh.services.core.errors import InvalidArgument, WorkmeshError, status_of
from workmesh.v1 import gateway_pb2

log = logging.getLogger("workmesh.gateway.steps")

Run = Callable[[gateway_pb2.RunStepRequest, object], Awaitable[gateway_pb2.RunStepResponse]]


async def serve_steps(run: Run, requests: AsyncIterator[gateway_pb2.RunStepRequest], context) -> None:
    """Answer every step asked on the stream; return when the worker has closed its side and
    every step asked has been answered.

    Raises:
        InvalidArgument: a request that cannot be parsed, or a call id still running.
    """
    tasks: dict[int, asyncio.Task] = {}
    writing = asyncio.Lock()

    async def answer(request: gateway_pb2.RunStepRequest) -> None:
        call_id = request.call_id
        try:
            reply = gateway_pb2.RunStepReply(call_id=call_id, response=await run(request, context))
        except Exception as exc:  # noqa: BLE001 - every refusal is this call's answer, as RunStep's status
            if not isinstance(exc, WorkmeshError):
                log.exception("RunSteps: step %r of job %s failed", request.step_name, request.parent_job_id)
            code, details = status_of(exc)
            reply = gateway_pb2.RunStepReply(call_id=call_id, status_code=code.value[0], status_message=details)
        finally:
            tasks.pop(call_id, None)
        with contextlib.suppress(Exception):  # the stream went away: nobody is left to tell
            async with writing:
                await context.write(reply)

    try:
        async for request in requests:
            if request.cancel:
                task = tasks.pop(request.call_id, None)
                if task is not None:
                    task.cancel()
                continue
            if request.call_id in tasks:
                raise InvalidArgument("call_id", f"{request.call_id} is still running on this stream: one id per step")
            tasks[request.call_id] = asyncio.ensure_future(answer(request))
        while tasks:  # the worker is done asking: answer what it asked
            await asyncio.gather(*list(tasks.values()), return_exceptions=True)
    finally:
        for task in list(tasks.values()):
            task.cancel()
