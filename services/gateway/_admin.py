"""``workmesh.v1.GatewayAdmin``: operator and test endpoints of a gateway (its self-check)."""

from __future__ import annotations

from workmesh.services.core.auth import ADMIN, require_scope
from workmesh.services.core.errors import WorkmeshError, abort
from workmesh.v1 import admin_pb2_grpc


class GatewayAdminServicer(admin_pb2_grpc.GatewayAdminServicer):
    """Implements workmesh.v1.GatewayAdmin over a dispatcher.

    Args:
        dispatcher: the gateway's dispatcher (its ``check_invariants`` answers CheckInvariants).
    """

    def __init__(self, dispatcher) -> None:
        self._dispatcher = dispatcher

    async def CheckInvariants(self, request, context):
        try:
            require_scope(ADMIN)  # with authentication on: an operator's endpoint
        except WorkmeshError as exc:
            await abort(context, exc)
        return await self._dispatcher.check_invariants()
