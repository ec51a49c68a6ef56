"""The gateway's configuration (read once from the environment) and the job store it names."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from workmesh.registry import RegistryConfig
from workmesh.services.core import env as envvars
from workmesh.services.core.auth import AuthConfig
from workmesh.services.core.limits import MAX_MESSAGE_BYTES
from workmesh.services.core.tls import TlsConfig
from workmesh.services.gateway._steps import StepLimits
from workmesh.services.gateway.dispatch._fairshare import POLICIES
from workmesh.services.gateway.dispatch._faults import Faults
from workmesh.services.gateway.dispatch._policy import DEFAULT_RETRY, RetryPolicy
from workmesh.services.gateway.http import HttpConfig
from workmesh.services.gateway.notify import NotifyConfig
from workmesh.services.gateway.store import JobStore
from workmesh.services.gateway.store._memory import MemoryJobStore

__all__ = ["GatewayConfig", "open_store", "store_url"]


@dataclass(frozen=True)
class GatewayConfig:
    """Settings of one gateway process; read once with :meth:`from_env`.

    Attributes:
        address: ``host:port`` to listen on (port 0 picks a free port).
        advertise: the host registered in the registry, where workers' and clients' lookups and
            the registry's health check reach this gateway (``WORKMESH_GATEWAY_ADVERTISE``;
            default: the listen host, 127.0.0.1 for a wildcard one, see
            :func:`~workmesh.services.core.net.advertise_host`).
        registry: where the registry is (``CONSUL_HTTP_ADDR``).
        database_url: SQLAlchemy URL of the job store (``DATABASE_URL``): empty means the durable
            default, a SQLite file ``jobs.db`` in `data_dir`; ``postgresql://...`` for PostgreSQL
            (needed for several replicas); ``memory://`` keeps jobs in process memory only
            (benchmarks, tests: lost on exit).
        data_dir: where the default SQLite job store lives (``WORKMESH_DATA_DIR``, default
            ``.workmesh``).
        sqlite_sync: SQLite's ``synchronous`` (``WORKMESH_SQLITE_SYNC``): ``NORMAL`` (default)
            keeps every acknowledged job and event across a crash or SIGKILL of the gateway, and
            its commits run on the event loop; ``FULL`` (or ``EXTRA``) also across a power loss
            or OS crash, at one disk sync per group commit (on the writer thread).
        replica_id: this gateway's lease owner name (``WORKMESH_REPLICA_ID``); default
            ``<hostname>:<port>``, the same across a restart, so a restarted gateway takes its
            jobs back at once. Must differ between replicas on one database.
        lease_seconds: a job lease's lifetime (``WORKMESH_LEASE_SECONDS``, default 10): how long
            the jobs of a replica that died wait before another replica takes them over.
        lease_renew: seconds between lease renewals and claims (``WORKMESH_LEASE_RENEW``, 3).
        reattach_wait: seconds a taken-over running job waits for its worker instance to show
            up in the registry before the attempt counts as lost (``WORKMESH_REATTACH_WAIT``, 10);
            also how long an instance that left the registry while running jobs of ours (health
            critical, e.g. a network partition) may take to come back before they are retried.
        job_ttl: seconds finished jobs are kept before the retention sweep deletes them
            (``WORKMESH_JOB_TTL``: e.g. ``30d``, ``12h``; unset: kept until deleted).
        store_retry: seconds a store call keeps retrying while the database is unreachable
            before it fails with UNAVAILABLE (``WORKMESH_STORE_RETRY``, default 60). Running
            jobs are not lost past it: the gateway lets go of them and re-attaches later.
        cancel_grace: seconds a worker gets to stop a cancelled or timed-out job before the
            gateway ends it itself.
        shutdown_grace: seconds running calls get when the server stops.
        max_message_bytes: largest gRPC message sent or received.
        register: register as ``workmesh-gateway`` in the registry (``serve`` only).
        retry: backoff between attempts of a job whose worker was lost.
        worker_sessions: run jobs over one Session stream per worker that serves it
            (``WORKMESH_WORKER_SESSIONS=0``: one Execute call per job).
        http: the HTTP/JSON API and console (``WORKMESH_HTTP_ADDR``, default 127.0.0.1:8080 from
            the environment); off unless given when the config is built in code.
        faults: faults injected for tests (``WORKMESH_FAULT_STALL_*``); none by default.
        type_retention: seconds a workflow type nobody serves stays known (its jobs are accepted
            and wait QUEUED, also after a restart; ``WORKMESH_TYPE_RETENTION``, default 7d;
            ``off``: for ever).
        scheduler: which queued job gets a free slot (``WORKMESH_SCHEDULER``): ``fair``
            (default: fair share by decayed compute time) or ``fifo`` (oldest first).
        shares_file: TOML file of weights and limits (``WORKMESH_SHARES_FILE``; unset: equal
            shares, no limits), read at start and again on SIGHUP.
        tls: TLS of the server and of the channels to workers and results (``WORKMESH_TLS_*``,
            see :class:`~workmesh.services.core.tls.TlsConfig`); off by default.
        auth: who may call (``WORKMESH_AUTH`` and the ``WORKMESH_JWT_*`` variables, see
            :class:`~workmesh.services.core.auth.AuthConfig`); off by default.
    """

    address: str = "127.0.0.1:50051"
    advertise: str = ""
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    database_url: str = ""
    data_dir: str = ".workmesh"
    sqlite_sync: str = "NORMAL"
    replica_id: str = ""
    lease_seconds: float = 10.0
    lease_renew: float = 3.0
    reattach_wait: float = 10.0
    job_ttl: float | None = None
    store_retry: float = 60.0
    cancel_grace: float = 5.0
    shutdown_grace: float = 5.0
    max_message_bytes: int = MAX_MESSAGE_BYTES
    register: bool = True
    worker_sessions: bool = True
    retry: RetryPolicy = DEFAULT_RETRY
    http: HttpConfig = field(default_factory=lambda: HttpConfig(address=None))
    faults: Faults = field(default_factory=Faults)
    type_retention: float | None = 7 * 86400.0
    scheduler: str = "fair"
    shares_file: str = ""
    auth: AuthConfig = field(default_factory=AuthConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    steps: StepLimits = field(default_factory=StepLimits)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewayConfig:
        """Read ``WORKMESH_GATEWAY_ADDR``, ``WORKMESH_GATEWAY_ADVERTISE``, ``CONSUL_HTTP_ADDR``/``CONSUL_HTTP_TOKEN``,
        ``DATABASE_URL``, ``WORKMESH_DATA_DIR``, ``WORKMESH_SQLITE_SYNC``, ``WORKMESH_REPLICA_ID``,
        ``WORKMESH_LEASE_SECONDS``, ``WORKMESH_LEASE_RENEW``, ``WORKMESH_REATTACH_WAIT``,
        ``WORKMESH_JOB_TTL``, ``WORKMESH_STORE_RETRY``, ``WORKMESH_CANCEL_GRACE``, ``WORKMESH_SHUTDOWN_GRACE``,
        ``WORKMESH_TYPE_RETENTION``, ``WORKMESH_FAULT_STALL_DISPATCH``/``_EXECUTE``,
        ``WORKMESH_WORKER_SESSIONS``, ``WORKMESH_SCHEDULER``, ``WORKMESH_SHARES_FILE``,
        ``WORKMESH_MAX_STEPS``, ``WORKMESH_MAX_STEP_DEPTH``, (see
        :class:`HttpConfig`) ``WORKMESH_HTTP_ADDR``, (see
        :class:`~workmesh.services.core.auth.AuthConfig`) ``WORKMESH_AUTH``/``WORKMESH_JWT_*`` and (see
        :class:`NotifyConfig`) ``WORKMESH_NOTIFY_*``/``WORKMESH_SMTP_*``.

        Raises:
            ValueError: a variable is malformed; the message names it.
        """
        env = os.environ if env is None else env
        lease = envvars.seconds(env, "WORKMESH_LEASE_SECONDS", cls.lease_seconds, above=0)
        renew = envvars.seconds(env, "WORKMESH_LEASE_RENEW", min(cls.lease_renew, lease / 3), above=0)
        if renew >= lease:
            raise envvars.EnvError(
                "WORKMESH_LEASE_RENEW", f"{renew:g}", f"must be below WORKMESH_LEASE_SECONDS={lease:g}"
            )
        return cls(
            address=envvars.host_port(env, "WORKMESH_GATEWAY_ADDR", cls.address),
            advertise=envvars.text(env, "WORKMESH_GATEWAY_ADVERTISE"),
            registry=RegistryConfig.from_env(env),
            scheduler=envvars.choice(env, "WORKMESH_SCHEDULER", cls.scheduler, POLICIES),
            shares_file=envvars.text(env, "WORKMESH_SHARES_FILE"),
            database_url=envvars.text(env, "DATABASE_URL"),
            data_dir=envvars.text(env, "WORKMESH_DATA_DIR", cls.data_dir),
            sqlite_sync=envvars.choice(env, "WORKMESH_SQLITE_SYNC", cls.sqlite_sync, ("NORMAL", "FULL", "EXTRA")),
            replica_id=envvars.text(env, "WORKMESH_REPLICA_ID"),
            lease_seconds=lease,
            lease_renew=renew,
            reattach_wait=envvars.seconds(env, "WORKMESH_REATTACH_WAIT", cls.reattach_wait),
            job_ttl=envvars.seconds(env, "WORKMESH_JOB_TTL", None, above=0, off=True),
            store_retry=envvars.seconds(env, "WORKMESH_STORE_RETRY", cls.store_retry),
            cancel_grace=envvars.seconds(env, "WORKMESH_CANCEL_GRACE", cls.cancel_grace),
            shutdown_grace=envvars.seconds(env, "WORKMESH_SHUTDOWN_GRACE", cls.shutdown_grace),
            worker_sessions=envvars.flag(env, "WORKMESH_WORKER_SESSIONS", cls.worker_sessions),
            http=HttpConfig.from_env(env),
            faults=Faults.from_env(env),
            auth=AuthConfig.from_env(env),
            tls=TlsConfig.from_env(env),
            notify=NotifyConfig.from_env(env),
            type_retention=envvars.seconds(env, "WORKMESH_TYPE_RETENTION", cls.type_retention, above=0, off=True),
            steps=StepLimits(
                max_steps=envvars.integer(env, "WORKMESH_MAX_STEPS", StepLimits.max_steps, minimum=0),
                max_depth=envvars.integer(env, "WORKMESH_MAX_STEP_DEPTH", StepLimits.max_depth, minimum=0),
            ),
        )


def store_url(config: GatewayConfig) -> str:
    """The job store URL `config` means: empty → the SQLite file ``<data_dir>/jobs.db``."""
    if config.database_url:
        return config.database_url
    return f"sqlite:///{Path(config.data_dir).expanduser().resolve() / 'jobs.db'}"


def open_store(config: GatewayConfig) -> JobStore:
    """The job store `config` asks for: SQLite in the data dir by default, PostgreSQL for a
    ``postgresql://`` URL, process memory for ``memory://``."""
    url = store_url(config)
    if url in ("memory", "memory://"):
        return MemoryJobStore()
    # Lazy on purpose: SQLAlchemy and alembic add about 1.4 s to start-up, which a gateway on
    # memory:// (tests, benchmarks) does not need to pay.
    from workmesh.services.gateway.store.sql._store import SqlJobStore

    # A SQLite file belongs to one gateway: the store enforces it, and can then serve the
    # events it wrote from memory.
    # On PostgreSQL it serves the events it wrote itself from memory too (others' writes
    # arrive by NOTIFY, which invalidates).
    return SqlJobStore(
        url,
        retry_for=config.store_retry,
        exclusive=url.startswith("sqlite"),
        own_events=True,
        sqlite_synchronous=config.sqlite_sync,
    )
