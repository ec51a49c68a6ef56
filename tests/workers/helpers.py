"""Helpers for the worker SDK tests: a real in-process grpc.aio Worker server on a free port."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc

from workmesh.v1 import common_pb2, worker_pb2, worker_pb2_grpc
from workmesh.workers import Worker, WorkerConfig


@contextlib.asynccontextmanager
async def serving(worker: Worker, **config) -> AsyncIterator[worker_pb2_grpc.WorkerStub]:
    """Serve `worker` on 127.0.0.1 (free port, no registration) and yield a stub; stop afterwards."""
    port = await worker.start(WorkerConfig(register=False, **config))
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        stub = worker_pb2_grpc.WorkerStub(channel)
        stub.channel = channel  # for other stubs (health, reflection) on the same connection
        yield stub
    finally:
        await channel.close()
        await worker.stop(grace=0)


def execute_request(job_id: str, workflow_type: str, attempt: int = 1, **params: object) -> worker_pb2.ExecuteRequest:
    """An ExecuteRequest whose params are all sent as strings (parsed by the worker)."""
    return worker_pb2.ExecuteRequest(
        job_id=job_id,
        workflow_type=workflow_type,
        attempt=attempt,
        params={k: common_pb2.ParamValue(string_value=str(v)) for k, v in params.items()},
    )


async def collect(stream) -> list[worker_pb2.WorkerEvent]:
    return [event async for event in stream]


def kinds(events) -> list[str]:
    return [event.WhichOneof("payload") for event in events]
