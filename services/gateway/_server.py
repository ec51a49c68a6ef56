"""The gateway process: the server factory and the ``serve`` entry point.

Its configuration, :class:`GatewayConfig`, is in :mod:`._config` (re-exported here).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import signal
import socket

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from workmesh.registry import (
    Registrar,
    ServiceRegistration,
    ServiceWatch,
)
from workmesh.services.core.auth import Authenticator, GrantStore, TokenStore, announce
from workmesh.services.core.decode import add_servicer
from workmesh.services.core.errors import WorkmeshError
from workmesh.services.core.net import advertise_host, join_host_port, split_host_port
from workmesh.services.core.telemetry import (
    GatewayMetrics,
    configure_telemetry,
    server_interceptors,
)
from workmesh.services.core.tls import bind
from workmesh.services.gateway._admin import GatewayAdminServicer
from workmesh.services.gateway._audit import AuditServicer
from workmesh.services.gateway._config import GatewayConfig, open_store, store_url
from workmesh.services.gateway._servicer import GatewayServicer, SeriesCleaner
from workmesh.services.gateway._shares import SharesError, load_shares
from workmesh.services.gateway._sharing import SharingServicer
from workmesh.services.gateway._step_access import GatewayAuthInterceptor, StepAccess
from workmesh.services.gateway._tokens import TokenAdminServicer
from workmesh.services.gateway.discovery._catalog import Catalog, Watch
from workmesh.services.gateway.discovery._remembered import RememberedTypes
from workmesh.services.gateway.dispatch._dispatcher import Dispatcher
from workmesh.services.gateway.dispatch._fairshare import Scheduler, Shares
from workmesh.services.gateway.http import HttpServer
from workmesh.services.gateway.notify import Notifier
from workmesh.services.gateway.store import AuditLog, JobStore
from workmesh.v1 import admin_pb2, gateway_pb2, sharing_pb2

log = logging.getLogger("workmesh.gateway")

SERVICE_NAME = "workmesh-gateway"
GRPC_SERVICE = gateway_pb2.DESCRIPTOR.services_by_name["Gateway"].full_name
ADMIN_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["GatewayAdmin"].full_name
TOKENS_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["TokenAdmin"].full_name
AUDIT_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["Audit"].full_name
SHARING_SERVICE = sharing_pb2.DESCRIPTOR.services_by_name["Sharing"].full_name

__all__ = ["GatewayConfig", "GatewayServer", "create_server", "open_store", "serve", "store_url"]


class GatewayServer:
    """A gateway bound to its port: gRPC server, registry watch, catalog and dispatcher.

    Made by :func:`create_server`; :meth:`start` begins discovery and dispatch and serving,
    :meth:`stop` ends them in reverse order.
    """

    def __init__(
        self,
        server: grpc.aio.Server,
        health_servicer: health.aio.HealthServicer,
        store: JobStore,
        catalog: Catalog,
        dispatcher: Dispatcher,
        own_store: bool,
        job_ttl: float | None = None,
        delete_series=None,
        http: HttpServer | None = None,
        shares_file: str = "",
    ) -> None:
        self.server = server
        self.http = http
        self.serving = False
        self.health = health_servicer
        self.store = store
        self.catalog = catalog
        self.dispatcher = dispatcher
        self._own_store = own_store
        self._job_ttl = job_ttl
        self._delete_series = delete_series  # what DeleteJob deletes series with; retention too
        self.retention_kept = 0  # jobs a sweep kept because their series could not be deleted
        self._retention: asyncio.Task | None = None
        self.notifier: Notifier | None = None  # set by create_server when a channel is configured
        self.shares_file = shares_file

    def reload_shares(self) -> bool:
        """Read the shares file again (SIGHUP); on any error keep the current shares.

        Returns:
            Whether the new file is in force.
        """
        if not self.shares_file:
            return False
        try:
            shares = load_shares(self.shares_file)
        except SharesError as exc:
            log.error("shares not reloaded, the previous ones stay in force: %s", exc)
            return False
        self.dispatcher.queue.scheduler.configure(shares)
        self.dispatcher.repump()
        log.info("shares reloaded from %s", self.shares_file)
        return True

    async def start(self) -> None:
        """Open the store, start discovery, dispatch (with lease keeping) and the gRPC server."""
        if hasattr(self.store, "start"):
            await self.store.start()  # migrations now, not at the first request
        await self.catalog.start()
        await self.dispatcher.start()
        if self.notifier is not None:
            await self.notifier.start()
        await self.server.start()
        if self._job_ttl:
            self._retention = asyncio.get_running_loop().create_task(
                self._sweep(self._job_ttl), name="gateway-retention"
            )
        for name in ("", GRPC_SERVICE):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if self.http is not None:
            await self.http.start()
        self.serving = True

    async def _sweep(self, ttl: float) -> None:
        # Every replica may sweep: deleting an already deleted job is a no-op. Each job goes the
        # way of DeleteJob — its series first, then the job — so a job whose series could not be
        # deleted (results service down) stays and is tried again at the next sweep.
        interval = min(max(ttl / 10, 1.0), 300.0)
        while True:
            cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=ttl)
            deleted, kept, error = 0, 0, None
            try:
                for job_id in await self.store.finished_before(cutoff):
                    try:
                        deleted += await self.dispatcher.delete(job_id, self._delete_series)
                    except WorkmeshError as exc:
                        kept, error = kept + 1, exc
            except WorkmeshError as exc:
                log.warning("retention sweep failed: %s", exc)
            if deleted:
                log.info("retention: deleted %d job(s) finished before %s", deleted, cutoff.isoformat())
            if kept:
                self.retention_kept += kept
                log.warning(
                    "retention: kept %d job(s) whose series could not be deleted, retried in %.0f s: %s",
                    kept,
                    interval,
                    error,
                )
            await asyncio.sleep(interval)

    async def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, stop the server (calls get `grace` seconds), then the rest."""
        self.serving = False
        await self.health.enter_graceful_shutdown()
        if self.http is not None:
            await self.http.stop()
        await self.server.stop(grace)
        if self._retention is not None:
            self._retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention
        if self.notifier is not None:
            await self.notifier.stop()
        await self.dispatcher.stop()
        await self.catalog.stop()
        if self._own_store:
            await self.store.close()

    async def wait_for_termination(self) -> None:
        """Wait until the gRPC server has stopped."""
        await self.server.wait_for_termination()


def create_server(
    config: GatewayConfig, store: JobStore | None = None, *, watch: Watch | None = None
) -> tuple[GatewayServer, int]:
    """Build a gateway bound to ``config.address``; call with an event loop running.

    Args:
        config: the settings.
        store: the job store; default: :func:`open_store` (closed on stop).
        watch: the registry watch to discover workers with; default: a
            ``workmesh.registry.ServiceWatch`` on ``config.registry``.

    Returns:
        The (not yet started) server and the port it is bound to.
    """
    if watch is None:
        watch = ServiceWatch(config.registry)
    size = config.max_message_bytes
    own_store = store is None
    store = open_store(config) if store is None else store  # lazy: opened by start()
    # API tokens live in the job store (when it keeps them); JWTs need no store.
    tokens = store if isinstance(store, TokenStore) else None
    # Off: no interceptor at all (an installed one costs tens of µs per call doing nothing).
    authenticator = Authenticator(config.auth, tokens) if config.auth.enabled else None
    capabilities = config.auth.capabilities()  # series write capabilities for attempts (auth on)
    if config.auth.enabled and capabilities is None:
        log.warning(
            "gateway: authentication is on but WORKMESH_SERIES_KEY is not set: workers get no "
            "series write capability and the results service refuses their series"
        )
    # A RunStep of a worker carries its attempt's capability instead of a token (_step_access).
    interceptors = server_interceptors("gateway") + ([GatewayAuthInterceptor(authenticator)] if authenticator else [])
    server = grpc.aio.server(
        options=[
            ("grpc.max_send_message_length", size),
            ("grpc.max_receive_message_length", size),
            ("grpc.so_reuseport", 0),
        ],
        interceptors=interceptors,
    )
    port = bind(server, config.address, config.tls)
    if port == 0:
        raise ValueError(f"gateway address {config.address!r}: cannot bind")
    catalog = Catalog(
        watch,
        sessions=config.worker_sessions,
        lost_after=config.reattach_wait,
        remembered=RememberedTypes(store, retention=config.type_retention),
        tls=config.tls,
    )
    metrics = GatewayMetrics()
    # Stable across restarts of this gateway (same host and port): it takes its jobs back at once.
    replica = config.replica_id or f"{socket.gethostname()}:{port}"
    try:
        shares = load_shares(config.shares_file) if config.shares_file else Shares()
    except SharesError as exc:
        raise ValueError(f"WORKMESH_SHARES_FILE: {exc}") from None
    dispatcher = Dispatcher(
        store,
        catalog,
        retry=config.retry,
        cancel_grace=config.cancel_grace,
        replica_id=replica,
        lease_seconds=config.lease_seconds,
        renew_interval=config.lease_renew,
        reattach_wait=config.reattach_wait,
        metrics=metrics,
        faults=config.faults,
        scheduler=Scheduler(shares, config.scheduler),
        capabilities=capabilities,
    )
    dispatcher.observe(metrics)
    # Where a handler's ctx.step reaches this gateway (sent with each attempt).
    bound_host, _ = split_host_port(config.address)
    dispatcher.gateway_address = join_host_port(advertise_host(bound_host, config.advertise), port)
    cleaner = SeriesCleaner(config.registry, tls=config.tls, capabilities=capabilities)
    servicer = GatewayServicer(
        store,
        catalog,
        dispatcher,
        delete_series=cleaner,
        max_message_bytes=size,
        notify=config.notify,
        step_limits=config.steps,
        step_access=StepAccess(capabilities) if authenticator else None,
    )
    # Registered so that a request that cannot be parsed is INVALID_ARGUMENT (core.decode).
    add_servicer(servicer, gateway_pb2.DESCRIPTOR.services_by_name["Gateway"], server)
    add_servicer(GatewayAdminServicer(dispatcher), admin_pb2.DESCRIPTOR.services_by_name["GatewayAdmin"], server)
    audit = store if isinstance(store, AuditLog) else None  # the job store's audit log
    if tokens is not None:
        add_servicer(TokenAdminServicer(tokens, audit), admin_pb2.DESCRIPTOR.services_by_name["TokenAdmin"], server)
    if audit is not None:
        add_servicer(AuditServicer(audit), admin_pb2.DESCRIPTOR.services_by_name["Audit"], server)
    sharing = None
    if isinstance(store, GrantStore):
        sharing = SharingServicer(store, store, audit)
        add_servicer(sharing, sharing_pb2.DESCRIPTOR.services_by_name["Sharing"], server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            GRPC_SERVICE,
            ADMIN_SERVICE,
            TOKENS_SERVICE,
            AUDIT_SERVICE,
            SHARING_SERVICE,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    gateway = GatewayServer(
        server,
        health_servicer,
        store,
        catalog,
        dispatcher,
        own_store,
        config.job_ttl,
        cleaner,
        shares_file=config.shares_file,
    )
    if config.notify.enabled:
        gateway.notifier = Notifier(store, config.notify)
    if config.http.address is not None:
        gateway.http = HttpServer(
            servicer,
            config.registry,
            config.http,
            ready=lambda: gateway.serving,
            stats=lambda: {"typeWatchers": catalog.subscriber_count},
            authenticator=authenticator,
            capabilities=capabilities,
            sharing=sharing,
        )
    return gateway, port


async def serve(config: GatewayConfig) -> None:
    """Run a gateway until SIGINT or SIGTERM, registered as ``workmesh-gateway``."""
    telemetry = configure_telemetry("workmesh-gateway")
    server, port = create_server(config)
    await server.start()
    # Every job allocates a few dozen short-lived objects; with the default gen-0 threshold
    # (700) the collector runs every few jobs and rescans everything loaded at start. Freezing
    # the start-up heap and collecting less often saves ~5% CPU per job (profiled).
    gc.freeze()
    gc.set_threshold(5000, 20, 20)
    host, _ = split_host_port(config.address)
    advertised = advertise_host(host, config.advertise)
    log.info(
        "gateway serving on %s (advertised as %s, registry %s)",
        join_host_port(host, port),
        join_host_port(advertised, port),
        config.registry.address,
    )
    announce(log, "gateway", config.auth, tokens=hasattr(server.store, "find_token"))
    registrar = None
    if config.register:
        registrar = Registrar(
            config.registry,
            [
                ServiceRegistration(
                    name=SERVICE_NAME,
                    service_id=f"{SERVICE_NAME}-{advertised}-{port}",
                    address=advertised,
                    port=port,
                    grpc_check=f"{join_host_port(advertised, port)}/{GRPC_SERVICE}",
                )
            ],
        )
        await registrar.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, server.reload_shares)
    try:
        await stop.wait()
        log.info("gateway stopping")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        if registrar is not None:
            await registrar.stop()
        await server.stop(config.shutdown_grace)
        telemetry.shutdown()
        log.info("gateway stopped")
