"""The workmesh gateway: job intake, discovery of workflow types, routing, dispatch and retries.

Run one with :func:`serve` (``workmesh gateway``) or embed one with :func:`create_server`.
"""

from workmesh.services.gateway._bench import bench_dispatch
from workmesh.services.gateway._catalog import Catalog
from workmesh.services.gateway._dispatch import Dispatcher
from workmesh.services.gateway._memory import MemoryJobStore
from workmesh.services.gateway._policy import RetryPolicy, choose_instance
from workmesh.services.gateway._server import (
    GatewayConfig,
    GatewayServer,
    create_server,
    serve,
)
from workmesh.services.gateway._service import GatewayServicer
from workmesh.services.gateway.store import TERMINAL, JobRecord, JobStore, JobUpdate

__all__ = [
    "TERMINAL",
    "Catalog",
    "Dispatcher",
    "GatewayConfig",
    "GatewayServer",
    "GatewayServicer",
    "JobRecord",
    "JobStore",
    "JobUpdate",
    "MemoryJobStore",
    "RetryPolicy",
    "bench_dispatch",
    "choose_instance",
    "create_server",
    "serve",
]
