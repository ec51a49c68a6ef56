"""The workmesh gateway: job intake, discovery of workflow types, routing, dispatch and retries.

Run one with :func:`serve` (``workmesh gateway``) or embed one with :func:`create_server`
(configured by :class:`GatewayConfig`, its ``retry`` a :class:`RetryPolicy`; a job store of your
own implements :class:`JobStore`, :class:`MemoryJobStore` keeps jobs in memory). The parts are
subpackages: ``discovery``, ``dispatch``, ``store`` (its records: ``store.JobRecord``...),
``http``, ``notify``.

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
from workmesh.services.gateway.dispatch._policy import RetryPolicy
from workmesh.services.gateway.store import JobStore
from workmesh.services.gateway.store._memory import MemoryJobStore

__all__ = [
    "GatewayConfig",
    "GatewayServer",
    "JobStore",
    "MemoryJobStore",
    "RetryPolicy",
    "create_server",
    "serve",
]
