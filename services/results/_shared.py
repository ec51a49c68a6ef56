"""Series of shared jobs: the results service asks the gateway whether a caller may read a job
of another subject of its tenant — the grants (and the job labels a label share names) live in
the gateway's job store.

Asked only when the owner rule alone refuses (the caller's own jobs, ``jobs:manage`` and
``admin`` never cost a call): ``Gateway.GetJob`` of the job with the caller's own bearer token,
so the gateway applies exactly its job rule, grants included. Nothing is cached, so an unshare
takes effect at the next read. The gateway is found in the registry (``workmesh-gateway``) and
called over TLS when the results service has a CA (``WORKMESH_TLS_CA``).
"""

from __future__ import annotations

import grpc

from workmesh.registry import RegistryConfig, find_service
from workmesh.services.core.errors import Unavailable
from workmesh.services.core.tls import TlsConfig
from workmesh.v1 import gateway_pb2, gateway_pb2_grpc

__all__ = ["GatewayShares"]

GATEWAY_SERVICE = "workmesh-gateway"


class GatewayShares:
    """Asks a gateway whether the caller of a read may read a job through a share.

    Args:
        registry: where the gateway is registered; or
        address: a fixed gateway address (tests, a single gateway).
        tls: channel settings (a CA: TLS).
    """

    def __init__(
        self, registry: RegistryConfig | None = None, *, address: str = "", tls: TlsConfig | None = None
    ) -> None:
        self._registry = registry
        self._address = address
        self._tls = tls or TlsConfig()
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def _stub(self) -> gateway_pb2_grpc.GatewayStub:
        address = self._address
        if not address:
            if self._registry is None:
                raise Unavailable("series of a shared job: no gateway to ask (no registry configured)")
            instances = await find_service(self._registry, GATEWAY_SERVICE)
            if not instances:
                raise Unavailable(f"series of a shared job: no passing {GATEWAY_SERVICE} instance in the registry")
            address = f"{instances[0].address}:{instances[0].port}"
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = self._tls.aio_channel(address)
        return gateway_pb2_grpc.GatewayStub(channel)

    async def readable(self, job_id: str, authorization: str) -> bool:
        """Whether the gateway lets the holder of `authorization` (``Bearer ...``) read `job_id`.

        Raises:
            Unavailable: no gateway could answer.
        """
        if not authorization:
            return False
        stub = await self._stub()
        try:
            await stub.GetJob(
                gateway_pb2.GetJobRequest(job_id=job_id), metadata=(("authorization", authorization),), timeout=10.0
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND):
                return False
            raise Unavailable(f"series of a shared job: the gateway did not answer ({exc.code().name})") from None
        return True

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
