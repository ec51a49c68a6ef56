"""The gRPC side of a worker: the ``workmesh.v1.Worker`` servicer and the server factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from workmesh.services.core.decode import add_servicer
from workmesh.services.core.errors import WorkmeshError, abort
from workmesh.services.core.limits import message_options
from workmesh.services.core.tls import TlsConfig, bind
from workmesh.v1 import worker_pb2, worker_pb2_grpc
from workmesh.workers.transport._session import ServerSession

if TYPE_CHECKING:
    from workmesh.workers._worker import Worker


class WorkerServicer(worker_pb2_grpc.WorkerServicer):
    """Maps the Worker RPCs onto a :class:`~workmesh.workers.Worker`."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker

    async def Describe(
        self, request: worker_pb2.DescribeRequest, context: grpc.aio.ServicerContext
    ) -> worker_pb2.DescribeResponse:
        return self._worker.describe()

    async def Execute(
        self, request: worker_pb2.ExecuteRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[worker_pb2.WorkerEvent]:
        try:
            job, after = self._worker.execute(request)
        except WorkmeshError as exc:
            await abort(context, exc)
            return
        async for event in job.follow(after):
            yield event

    async def Attach(
        self, request: worker_pb2.AttachRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[worker_pb2.WorkerEvent]:
        try:
            job = self._worker.attach(request.job_id, request.after_seq)
        except WorkmeshError as exc:
            await abort(context, exc)
            return
        async for event in job.follow(request.after_seq):
            yield event

    async def Cancel(
        self, request: worker_pb2.CancelRequest, context: grpc.aio.ServicerContext
    ) -> worker_pb2.CancelResponse:
        return worker_pb2.CancelResponse(found=self._worker.cancel(request.job_id, request.reason or "cancelled"))

    async def Session(self, request_iterator: object, context: grpc.aio.ServicerContext) -> None:
        # Reads and writes through `context` (the request iterator is left unused): one task
        # applies commands while this one sends the batched events.
        await ServerSession(self._worker, context).run()


def create_server(
    worker: Worker,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    health_servicer: health.aio.HealthServicer | None = None,
    tls: TlsConfig | None = None,
) -> tuple[grpc.aio.Server, int]:
    """Build (not start) the gRPC server of `worker`: Worker service, health and reflection.

    Args:
        worker: the worker whose jobs the server runs.
        host: interface to listen on.
        port: port to listen on; 0 picks a free one.
        health_servicer: the grpc.health.v1 servicer to serve (its statuses are the caller's
            to set); a new one when omitted.
        tls: serve TLS when it has a certificate (mutual TLS when it asks for client certificates).

    Returns:
        The server and the bound port. Stop it with ``await server.stop(grace)``, or use
        :meth:`Worker.start`/:meth:`Worker.stop`, which also drain.
    """
    options = [*message_options(), ("grpc.so_reuseport", 0)]
    server = grpc.aio.server(options=options)
    # Registered so that a request that cannot be parsed is INVALID_ARGUMENT (core.decode).
    add_servicer(WorkerServicer(worker), worker_pb2.DESCRIPTOR.services_by_name["Worker"], server)
    health_servicer = health_servicer or health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            worker_pb2.DESCRIPTOR.services_by_name["Worker"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    bound = bind(server, address, tls)
    if bound == 0:
        raise OSError(f"cannot listen on {address}")
    return server, bound
