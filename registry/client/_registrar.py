"""Keep service registrations alive in the registry for as long as the process serves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from types import TracebackType

import consul
import consul.exceptions

from workmesh.registry.client._config import RegistryConfig
from workmesh.registry.client._consul import Backoff, open_client
from workmesh.registry.client._model import ServiceRegistration

log = logging.getLogger(__name__)


class Registrar:
    """Registers services on start, re-registers them when the agent forgot them, deregisters
    them on stop.

    The anti-entropy loop lists ``/v1/agent/services`` every ``resync_interval`` seconds and
    registers again whatever is missing (an agent or embedded-registry restart loses them).
    While the registry is unreachable it keeps retrying with backoff and never raises, so a
    worker keeps serving through a registry outage.

    Args:
        config: where the registry is.
        registrations: the instances to keep registered.
        resync_interval: seconds between anti-entropy checks.
        request_timeout: bound of each HTTP request, in seconds.
    """

    def __init__(
        self,
        config: RegistryConfig,
        registrations: Sequence[ServiceRegistration],
        *,
        resync_interval: float = 5.0,
        request_timeout: float = 5.0,
    ) -> None:
        ids = [r.service_id for r in registrations]
        if len(set(ids)) != len(ids):
            raise ValueError("Registrar.registrations: service_id values must be unique")
        self.config = config
        self.registrations = tuple(registrations)
        self.resync_interval = resync_interval
        self.request_timeout = request_timeout
        self._client: consul.aio.Consul | None = None
        self._task: asyncio.Task | None = None
        self._registered: set[str] = set()
        self._deregistered = False

    @property
    def registered(self) -> frozenset[str]:
        """Service ids this registrar believes the registry holds right now."""
        return frozenset(self._registered)

    async def start(self) -> None:
        """Register every service (best effort) and start the anti-entropy loop.

        Raises:
            ValueError: the registry rejected a registration as malformed (HTTP 400); retrying
                would not help. An unreachable registry does not raise: the loop retries.
        """
        if self._task is not None:
            return
        if self._client is None:
            self._client = open_client(self.config, self.request_timeout)
        client = self._client
        self._deregistered = False
        try:
            await self._register_missing(client, set())
        except consul.exceptions.BadRequest as exc:
            await self._close_client()
            raise ValueError(f"registry at {self.config.address} rejected a registration: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - any transport error: the loop retries
            log.warning("registry at %s unreachable, will retry: %s", self.config.address, exc)
        self._task = asyncio.create_task(self._loop(client), name="workmesh-registrar")

    async def stop(self) -> None:
        """Deregister (unless :meth:`deregister_now` did already) and stop the loop."""
        await self.deregister_now()
        await self._close_client()

    async def deregister_now(self) -> None:
        """Stop re-registering and remove every service from the registry now.

        Used when draining before exit so no new work is routed here. Errors are logged, not
        raised: a registry that is down forgets us anyway once our checks fail.
        """
        await self._stop_loop()
        if self._deregistered or self._client is None:
            return
        self._deregistered = True
        for reg in self.registrations:
            try:
                await self._client.agent.service.deregister(reg.service_id)
            except Exception as exc:  # noqa: BLE001 - best effort on the way out
                log.warning("could not deregister %s: %s", reg.service_id, exc)
            self._registered.discard(reg.service_id)

    async def __aenter__(self) -> Registrar:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _loop(self, client: consul.aio.Consul) -> None:
        backoff = Backoff(first=0.1, limit=min(self.resync_interval, 2.0))
        healthy = len(self._registered) == len(self.registrations)
        while True:
            await asyncio.sleep(self.resync_interval if healthy else backoff.delay())
            try:
                known = await client.agent.services()
                await self._register_missing(client, set(known or {}))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep serving whatever the registry does
                if healthy:
                    log.warning("registry at %s unreachable, retrying: %s", self.config.address, exc)
                healthy = False
                continue
            if not healthy:
                log.info(
                    "registered %s with the registry at %s", ", ".join(sorted(self._registered)), self.config.address
                )
            healthy = True
            backoff.reset()

    async def _register_missing(self, client: consul.aio.Consul, known: set[str]) -> None:
        for reg in self.registrations:
            if reg.service_id in known:
                self._registered.add(reg.service_id)
                continue
            if reg.service_id in self._registered:
                log.info("registry forgot %s; registering it again", reg.service_id)
            self._registered.discard(reg.service_id)
            body = reg.payload()
            await client.agent.service.register(
                body["Name"],
                service_id=body["ID"],
                address=body["Address"],
                port=body["Port"],
                tags=body["Tags"],
                meta=body["Meta"],
                check=body.get("Check"),
            )
            self._registered.add(reg.service_id)

    async def _stop_loop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _close_client(self) -> None:
        await self._stop_loop()
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()
