"""One worker process as the catalog sees it (:class:`InstanceState`: its channel, the types it
serves, its capacity, our jobs on it) and the per-version summaries of a type's instances."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import grpc

from workmesh.services.core.limits import message_options
from workmesh.services.core.tls import TlsConfig
from workmesh.services.gateway.discovery._session import WorkerSession
from workmesh.services.gateway.discovery._versions import order_key
from workmesh.v1 import common_pb2, gateway_pb2, worker_pb2, worker_pb2_grpc

CHANNEL_OPTIONS = tuple(message_options())


def version_key(version: str) -> tuple:
    """Sort key of a version string: numeric parts compare as numbers ("1.10" > "1.9")."""
    parts = []
    for piece in version.replace("-", ".").split("."):
        parts.append((0, int(piece), "") if piece.isdigit() else (1, 0, piece))
    return tuple(parts)


class InstanceState:
    """One worker process: its channel, what it serves, its capacity and our jobs on it."""

    def __init__(self, address: str, port: int, *, sessions: bool = True, tls: TlsConfig | None = None) -> None:
        self.address = address
        self.port = port
        self.key = f"{address}:{port}"
        self.channel = (
            tls.aio_channel(self.key, CHANNEL_OPTIONS)
            if tls is not None
            else grpc.aio.insecure_channel(self.key, options=CHANNEL_OPTIONS)
        )
        self.stub = worker_pb2_grpc.WorkerStub(self.channel)
        self.service_ids: set[str] = set()
        self.registered_types: set[str] = set()  # from the registry view
        self.checks: list[gateway_pb2.InstanceCheck] = []  # the registry's, of all its registrations
        self.types: dict[str, common_pb2.WorkflowType] = {}  # from Describe
        self.instance_id = ""
        self.capacity = 0
        self.in_flight = 0
        self.described = False
        self.present = True  # still in the registry view
        self.healthy = True  # False after a connection failure, until the registry says otherwise
        self.busy_until = 0.0  # monotonic time until which the worker said it is full
        self.sessions = sessions  # use the worker's Session stream when it serves one
        self.session_supported = False  # from Describe
        self._session: WorkerSession | None = None
        self.absent_timer: asyncio.TimerHandle | None = None  # running out while it is gone

    @property
    def available(self) -> bool:
        """Takes new jobs: described, registered, healthy and not recently full."""
        return (
            self.described
            and self.present
            and self.healthy
            and (self.busy_until == 0.0 or time.monotonic() >= self.busy_until)
        )

    @property
    def name(self) -> str:
        """The worker's own instance id (from Describe), else its address."""
        return self.instance_id or self.key

    def serves(self) -> set[str]:
        """The types it is registered for and has described."""
        return self.registered_types & self.types.keys()

    @property
    def session(self) -> WorkerSession | None:
        """The Session stream jobs go over now (None: none open, or Execute per job)."""
        session = self._session
        return session if session is not None and session.broken is None else None

    def _live_session(self) -> WorkerSession | None:
        if not (self.sessions and self.session_supported):
            return None
        session = self._session
        if session is None or session.broken is not None:
            # After a break the next job opens a new stream (to a restarted worker, or to fail
            # fast like an Execute to a dead one).
            session = self._session = WorkerSession(self.stub, self.name)
        return session

    def execute(self, request: worker_pb2.ExecuteRequest) -> Any:
        """Start a job attempt on this instance: a call-like object streaming its WorkerEvents.

        Over the instance's Session stream when the worker serves one (see ``_session.py``),
        else a plain ``Execute`` call; both offer ``await read()`` (an event or
        ``grpc.aio.EOF``) and ``cancel()``, and fail with ``grpc.aio.AioRpcError``.
        """
        session = self._live_session()
        return session.execute(request) if session is not None else self.stub.Execute(request)

    def attach(self, request: worker_pb2.AttachRequest) -> Any:
        """Re-follow a job on this instance (``Attach``), like :meth:`execute`."""
        session = self._live_session()
        return session.attach(request) if session is not None else self.stub.Attach(request)

    async def close(self) -> None:
        """End the session (if any) and close the channel."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self.channel.close()


def version_summaries(name: str, insts: Iterable[InstanceState]) -> list[gateway_pb2.TypeVersionInfo]:
    """The versions of type `name` that `insts` serve, newest first, with their instances
    (free capacity is filled in per request, by ``Catalog._with_load``)."""
    by_version: dict[str, list[InstanceState]] = {}
    for inst in sorted(insts, key=lambda i: i.key):
        by_version.setdefault(inst.types[name].version, []).append(inst)
    order = sorted(by_version, key=order_key)
    return [
        gateway_pb2.TypeVersionInfo(
            version=version,
            type=by_version[version][0].types[name],
            healthy_instances=sum(i.healthy for i in by_version[version]),
            capacity=sum(i.capacity for i in by_version[version] if i.healthy),
            addresses=[i.key for i in by_version[version]],
        )
        for version in reversed(order)
    ]
