"""Turning gRPC errors from the results service back into workmesh errors (client side).

The mapping lives in :mod:`workmesh.services.core.errors` (the CLI imports it from there, without
this package's clients); it is exported here for the clients' callers.
"""

from __future__ import annotations

from workmesh.services.core.errors import from_rpc_error

__all__ = ["from_rpc_error"]
