"""An in-process mesh for the gateway tests: embedded registry, a real gateway, real workers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import grpc

from tests.support import eventually_async
from workmesh.registry import EmbeddedRegistry
from workmesh.services.gateway import GatewayConfig, MemoryJobStore, RetryPolicy, create_server
from workmesh.services.gateway.store import TERMINAL
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g
from workmesh.v1 import gateway_pb2_grpc
from workmesh.workers import Worker, WorkerConfig


def value(v) -> c.ParamValue:
    """A ParamValue from a Python value (strings are parsed by the gateway)."""
    if isinstance(v, bool):
        return c.ParamValue(bool_value=v)
    if isinstance(v, int):
        return c.ParamValue(int_value=v)
    if isinstance(v, float):
        return c.ParamValue(float_value=v)
    return c.ParamValue(string_value=str(v))


class Mesh:
    """Registry + gateway in this process; workers added per test; all stopped on exit."""

    def __init__(self, *, cancel_grace: float = 1.0, sessions: bool = True, store=None, **options) -> None:
        self.registry = EmbeddedRegistry()
        self.options = options  # more GatewayConfig fields
        self.store = store  # default: a new MemoryJobStore
        self.cancel_grace = cancel_grace
        self.sessions = sessions  # jobs over worker Session streams (else one Execute per job)
        self.workers: list[Worker] = []

    async def __aenter__(self) -> Mesh:  # noqa: PYI034 - never subclassed
        await self.registry.start()
        config = GatewayConfig(
            address="127.0.0.1:0",
            registry=self.registry.config,
            cancel_grace=self.cancel_grace,
            worker_sessions=self.sessions,
            retry=RetryPolicy(initial=0.05, multiplier=2.0, maximum=0.2, jitter=0.0),
            **self.options,
        )
        if self.store is None:
            self.store = MemoryJobStore()
        self.gateway, self.port = create_server(config, store=self.store)
        await self.gateway.start()
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = gateway_pb2_grpc.GatewayStub(self.channel)
        return self

    async def __aexit__(self, *exc) -> None:
        for worker in self.workers:
            with contextlib.suppress(Exception):
                await worker.stop(grace=0)
        await self.channel.close()
        await self.gateway.stop(0)
        await self.registry.stop()

    async def add_worker(self, workflows: Sequence, capacity: int = 4, **kw) -> Worker:
        worker = Worker(list(workflows), capacity=capacity, **kw)
        await worker.start(WorkerConfig(registry=self.registry.config, drain_grace=0.0))
        self.workers.append(worker)
        return worker

    async def types(self) -> dict[str, g.WorkflowTypeInfo]:
        reply = await self.stub.ListWorkflowTypes(g.ListWorkflowTypesRequest())
        return {t.type.name: t for t in reply.types}

    async def wait_instances(self, name: str, count: int, timeout: float = 60) -> None:
        """Until the gateway lists exactly `count` healthy instances of `name`.

        A worker registers each of its types as its own registry service, so seeing one of its
        types says nothing about another: wait for every type a test uses. The timeout allows
        for worker processes that start under load (their imports alone take seconds).
        """

        async def check():
            info = (await self.types()).get(name)
            return info is not None and info.healthy_instances == count

        await eventually_async(check, timeout=timeout)

    async def wait_checked(self, name: str, timeout: float = 60) -> g.WorkflowTypeInfo:
        """Until every listed instance of `name` shows its first registry health check's result
        (each check has an output); returns the type's entry then.

        Until then the entry changes once more when that result comes in, so a WatchWorkflowTypes
        stream opened or read before it sees an UPDATED change for it first.
        """

        async def check():
            info = (await self.types()).get(name)
            return info if info is not None and info.instances and all(map(checked, info.instances)) else None

        return await eventually_async(check, timeout=timeout)

    async def submit(self, workflow_type: str, timeout: float | None = None, **params) -> g.Job:
        request = g.SubmitJobRequest(workflow_type=workflow_type, params={k: value(v) for k, v in params.items()})
        if timeout is not None:
            request.timeout.FromNanoseconds(int(timeout * 1e9))
        return (await self.stub.SubmitJob(request)).job

    async def follow(self, job_id: str, after_seq: int = 0, timeout: float = 30) -> list[c.JobEvent]:
        """Every event from after_seq to the terminal one."""

        async def read():
            return [e async for e in self.stub.WatchJob(g.WatchJobRequest(job_id=job_id, after_seq=after_seq))]

        return await asyncio.wait_for(read(), timeout)

    async def job(self, job_id: str) -> g.Job:
        return await self.stub.GetJob(g.GetJobRequest(job_id=job_id))

    async def wait_status(self, job_id: str, *statuses: int) -> g.Job:
        async def check():
            job = await self.job(job_id)
            return job if job.status in statuses else None

        return await eventually_async(check, timeout=60)


def checked(instance: g.InstanceInfo) -> bool:
    """The registry has run the instance's health checks (each has an output)."""
    return bool(instance.checks) and all(check.output for check in instance.checks)


def statuses(events: Sequence[c.JobEvent]) -> list[int]:
    return [e.status.status for e in events if e.WhichOneof("payload") == "status"]


def terminal(events: Sequence[c.JobEvent]) -> int:
    last = statuses(events)[-1]
    assert last in TERMINAL
    return last
