"""The embedded registry: a single-node server of the part of Consul's HTTP API workmesh uses.

The default registry on one machine (``workmesh registry``, or inside ``workmesh dev``): the
same client code runs unchanged against it and against a real Consul. State lives in memory,
as in ``consul agent -dev``: a restart forgets every service, and Registrars register again.

Differences from Consul, on purpose: only GRPC and TTL checks run (others are rejected with
400); documented fields and query parameters it does not implement are refused with 400
naming them (Consul would honour them; ignoring them would answer something else than was
asked); DeregisterCriticalServiceAfter has no 1-minute minimum and is enforced within ``tick``
seconds (Consul: every 30 s); the ``consul`` service itself is not listed; a blocking query
whose index is ahead of the registry's (after a restart) answers at once. Like Consul, it
raises check Intervals below 1 s to 1 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

from aiohttp import web

from workmesh.registry.client._config import RegistryConfig
from workmesh.registry.embedded._api import ChangeNotifier, RegistryApi
from workmesh.registry.embedded._checks import CheckRunner
from workmesh.registry.embedded._state import RegistryState

log = logging.getLogger(__name__)


class EmbeddedRegistry:
    """A Consul-API registry served by this process.

    Args:
        host: address to listen on (loopback by default).
        port: port to listen on; 0 picks a free one (see :attr:`port` after start).
        node_name: the name of its one node.
        tick: seconds between TTL-expiry/reaper passes.
        ca_file: the CA that GRPC checks with ``GRPCUseTLS`` verify certificates against (as a
            Consul agent's ``ca_file``); empty: the system's CAs.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        node_name: str = "workmesh-registry",
        tick: float = 0.25,
        ca_file: str = "",
    ) -> None:
        self.host, self._port, self.tick = host, port, tick
        node_address = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        self.state = RegistryState(node_name=node_name, node_address=node_address)
        self._notifier = ChangeNotifier()
        self.state.add_listener(self._notifier.notify)
        self._checks = CheckRunner(self.state, tick=tick, ca_file=ca_file)
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        """The bound port (the requested one until started)."""
        return self._port

    @property
    def address(self) -> str:
        """``host:port`` to put into ``CONSUL_HTTP_ADDR``."""
        return f"{self.state.node_address}:{self._port}"

    @property
    def config(self) -> RegistryConfig:
        """A client configuration pointing here."""
        return RegistryConfig(address=self.address)

    async def start(self) -> None:
        """Bind the port and start serving and health checking."""
        if self._runner is not None:
            return
        api = RegistryApi(self.state, self._notifier, leader=f"{self.state.node_address}:8300")
        # handler_cancellation: a watcher that hangs up must not keep its blocked query alive.
        runner = web.AppRunner(api.app(), handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = runner.addresses[0][1]
        self._notifier.closed = False
        self._checks.start()

    async def stop(self) -> None:
        """Stop serving; blocked queries answer at once, probes stop."""
        if self._runner is None:
            return
        self._notifier.close()
        await self._checks.stop()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> EmbeddedRegistry:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def run_embedded_registry(
    host: str = "127.0.0.1",
    port: int = 8500,
    *,
    ready: Callable[[EmbeddedRegistry], None] | None = None,
    ca_file: str = "",
) -> None:
    """Serve an embedded registry until cancelled, SIGINT or SIGTERM.

    Args:
        host: address to listen on.
        port: port to listen on (0: a free one).
        ready: called with the started registry (e.g. to learn the port).
        ca_file: see :class:`EmbeddedRegistry`.
    """
    registry = EmbeddedRegistry(host, port, ca_file=ca_file)
    await registry.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    log.info("embedded registry listening on http://%s (CONSUL_HTTP_ADDR=%s)", registry.address, registry.address)
    try:
        if ready is not None:
            ready(registry)
        await stop.wait()
        log.info("embedded registry stopping")
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await registry.stop()
