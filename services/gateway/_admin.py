"""``workmesh.v1.GatewayAdmin``: operator and test endpoints of a gateway (its self-check)."""

from __future__ import annotations

from workmesh.v1 import admin_pb2_grpc


class GatewayAdminServicer(admin_pb2_grpc.GatewayAdminServicer):
    """Implements workmesh.v1.GatewayAdmin over a dispatcher.

    Args:
        dispatcher: the gateway's dispatcher (its ``check_invariants`` answers CheckInvariants).
    """

    def __init__(self, dispatcher) -> None:
        self._dispatcher = dispatcher

    async def CheckInvariants(self, request, context):
        return await self._dispatcher.check_invariants()
