"""The results service process: gRPC server factory, store factory, and ``serve``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import uuid

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from workmesh.registry import Registrar, ServiceRegistration
from workmesh.services.clients._wire import HTTP2_OPTIONS, parse_write_request
from workmesh.services.core.auth import PUBLIC_METHODS, Authenticator
from workmesh.services.core.decode import add_servicer
from workmesh.services.core.limits import message_options
from workmesh.services.core.net import join_host_port
from workmesh.services.core.telemetry import configure_telemetry, server_interceptors
from workmesh.services.core.tls import bind
from workmesh.services.results._access import CAPABILITY_METHODS, ResultsAuthInterceptor, SeriesAccess
from workmesh.services.results._config import ResultsConfig
from workmesh.services.results._local import LocalReads
from workmesh.services.results._memory import retain_freed_memory
from workmesh.services.results._readers import ReaderGrants
from workmesh.services.results._servicer import ResultsServicer
from workmesh.services.results._shared import GatewayShares
from workmesh.services.results.stores._compaction import Compactor
from workmesh.services.results.stores._influx import InfluxStore
from workmesh.services.results.stores._owners import owners_of
from workmesh.services.results.stores._parquet import ParquetStore
from workmesh.services.results.stores._protocol import SeriesStore
from workmesh.services.results.stores._tombstones import TombstonedStore
from workmesh.v1 import results_pb2

SERVICE_NAME = "workmesh-results"
"""The registry name of the results service (also a grpc.health.v1 service name it serves)."""
GRPC_SERVICE = results_pb2.DESCRIPTOR.services_by_name["Results"].full_name

log = structlog.get_logger("workmesh.results")


def create_store(config: ResultsConfig, host: str = "") -> SeriesStore:
    """The store `config` asks for; `host` is the results service address for Parquet refs."""
    if config.store == "influx":
        return InfluxStore(config.influx)
    return ParquetStore(config.data_dir, host, fsync=config.fsync, compression=config.compression)


def create_server(config: ResultsConfig, store: SeriesStore | None = None) -> tuple[grpc.aio.Server, int]:
    """Build (not start) the gRPC server with Results, health and reflection.

    Args:
        config: listen address, store choice and limits.
        store: a store to serve instead of the one `config` describes (tests).

    Returns:
        The server and the bound port. Start it with ``await server.start()``; stop it with
        ``await server.stop(grace)`` and close the store via ``server.results_store``.
    """
    options = [
        *message_options(),
        ("grpc.so_reuseport", 0),  # a second server on a taken port fails instead of sharing it
        *HTTP2_OPTIONS,
    ]

    interceptors = server_interceptors("results")
    capabilities = config.auth.capabilities()
    if config.auth.enabled:
        if capabilities is None:
            raise ValueError(
                "WORKMESH_SERIES_KEY: required with WORKMESH_AUTH=on (the key the gateway signs the "
                "workers' series write capabilities with)"
            )
        # Callers of ListSeries/ReadSeries by JWT (API tokens live in the gateway's job store) or
        # the gateway's read capability; WriteSeries/DeleteSeries by the gateway's capabilities.
        authenticator = Authenticator(config.auth, None)
        interceptors = [*interceptors, ResultsAuthInterceptor(authenticator, (*PUBLIC_METHODS, *CAPABILITY_METHODS))]
    server = grpc.aio.server(options=options, interceptors=interceptors)
    port = bind(server, config.listen, config.tls)
    if port == 0:
        raise OSError(f"cannot bind the results service to {config.listen}")
    if store is None:
        store = create_store(config, join_host_port(config.host, port))
    elif not store.host:  # a Parquet store made before the port was known
        store.host = join_host_port(config.host, port)
    served = store if isinstance(store, TombstonedStore) else TombstonedStore(store, store.tombstones)
    compactor = None
    if isinstance(served.store, ParquetStore) and config.compaction_delay >= 0:
        compactor = Compactor(served.store, delay=config.compaction_delay)
    owners = owners_of(served.store) if capabilities is not None else None
    shares = GatewayShares(config.registry, address=config.gateway, tls=config.tls) if config.auth.enabled else None
    access = SeriesAccess(capabilities, owners, shares) if capabilities is not None and owners is not None else None
    readers = ReaderGrants(served, capabilities, owners)
    local = None
    if isinstance(served.store, ParquetStore) and config.local_reads:
        local = LocalReads.beside(served.store)
    servicer = ResultsServicer(
        served, batch_values=config.batch_values, compactor=compactor, access=access, readers=readers, local=local
    )
    add_servicer(
        servicer,
        results_pb2.DESCRIPTOR.services_by_name["Results"],
        server,
        parsers={"WriteSeries": parse_write_request},
    )
    server.results_compactor = compactor  # type: ignore[attr-defined]
    server.results_local = local  # type: ignore[attr-defined]  # its socket, opened at the first local read
    server.results_shares = shares  # type: ignore[attr-defined]  # its gateway channels, closed on stop
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((GRPC_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    server.results_store = served  # type: ignore[attr-defined]
    server.health_servicer = health_servicer  # type: ignore[attr-defined]
    return server, port


async def _set_health(server: grpc.aio.Server, status: int) -> None:
    for name in ("", GRPC_SERVICE, SERVICE_NAME):
        await server.health_servicer.set(name, status)  # type: ignore[attr-defined]


async def serve(config: ResultsConfig) -> None:
    """Run the results service until SIGINT/SIGTERM, registered as ``workmesh-results``.

    Sets up telemetry (logs, traces from the ``OTEL_*`` variables) for the process first, and keeps
    freed memory for the next read (:func:`retain_freed_memory`; ``WORKMESH_RESULTS_RETAIN_MEMORY=off``
    leaves the allocators alone). On a
    signal it reports NOT_SERVING, deregisters, lets calls finish for ``config.grace`` seconds,
    then stops and closes the store.
    """
    telemetry = configure_telemetry(SERVICE_NAME)
    if os.environ.get("WORKMESH_RESULTS_RETAIN_MEMORY", "on") != "off":
        retain_freed_memory()
    server, port = create_server(config)
    await server.start()
    # What start-up loaded lives as long as the process: out of the collector's way, so that a
    # full collection during a read walks only what reads made (as the gateway does).
    gc.freeze()
    await _set_health(server, health_pb2.HealthCheckResponse.SERVING)
    log.info(
        "results service listening",
        address=join_host_port(config.host, port),
        listen=config.listen,
        store=config.store,
        data_dir=str(config.data_dir) if config.store == "parquet" else None,
    )
    if config.auth.enabled:
        log.info("results service: " + config.auth.describe(False) + "; series writes need the gateway's capability")
    else:  # said at every start, so that nobody mistakes it for protected
        log.warning(
            "results service: authentication is OFF: every caller may read, write and delete every "
            "series (WORKMESH_AUTH=on)"
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    registrar = None
    try:
        if config.registry is not None:
            registration = ServiceRegistration(
                name=SERVICE_NAME,
                service_id=f"{SERVICE_NAME}-{uuid.uuid4().hex[:12]}",
                address=config.host,
                port=port,
                tags=("workmesh",),
                meta={"store": config.store},
                grpc_check=f"{join_host_port(config.host, port)}/{SERVICE_NAME}",
                grpc_tls=config.tls.serves_tls,
                tls_server_name=config.tls.server_name,
            )
            registrar = Registrar(config.registry, [registration])
            try:
                await registrar.start()
            except Exception as exc:  # noqa: BLE001 - serve anyway; the registrar keeps retrying
                log.warning("registration failed", error=str(exc))
        await stop.wait()
        log.info("results service stopping", grace=config.grace)
        await _set_health(server, health_pb2.HealthCheckResponse.NOT_SERVING)
        if registrar is not None:
            with contextlib.suppress(Exception):
                await registrar.deregister_now()
        await server.stop(config.grace)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if registrar is not None:
            with contextlib.suppress(Exception):
                await registrar.stop()
        await server.stop(0)
        if server.results_compactor is not None:  # type: ignore[attr-defined]
            await server.results_compactor.close()  # type: ignore[attr-defined]
        if server.results_shares is not None:  # type: ignore[attr-defined]
            await server.results_shares.close()  # type: ignore[attr-defined]
        if server.results_local is not None:  # type: ignore[attr-defined]
            await server.results_local.close()  # type: ignore[attr-defined]
        await server.results_store.close()  # type: ignore[attr-defined]
        log.info("results service stopped")
        telemetry.shutdown()
