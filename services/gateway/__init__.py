"""The workmesh gateway: job intake, discovery of workflow types, routing, dispatch and retries.

Run one with :func:`serve` (``workmesh gateway``) or embed one with :func:`create_server`.

Jobs are durable by default: the job store is a SQLite file in ``WORKMESH_DATA_DIR`` (one gateway
per file), or PostgreSQL (``DATABASE_URL``) for several replicas, which share the jobs through
row leases; ``memory://`` keeps them in memory (benchmarks, tests). A restarted gateway, or a
replica taking over from one that died, re-attaches to jobs still running on their workers.
"""

from workmesh.services.gateway._server import (
    GatewayConfig,
    GatewayServer,
    create_server,
    serve,
)
from workmesh.services.gateway._servicer import GatewayServicer
from workmesh.services.gateway.discovery._catalog import Catalog
from workmesh.services.gateway.dispatch._dispatcher import Dispatcher
from workmesh.services.gateway.dispatch._policy import RetryPolicy, choose_instance
from workmesh.services.gateway.store import TERMINAL, JobRecord, JobStore, JobUpdate
from workmesh.services.gateway.store._memory import MemoryJobStore

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
    "choose_instance",
    "create_server",
    "serve",
]
