"""A cached, always-answerable view of the passing instances of tagged services.

Blocking queries keep the view fresh: ``/v1/catalog/services`` finds the services carrying the
tag, then one ``/v1/health/service/<name>?passing=1&tag=<tag>`` loop per service follows its
instances. Each query hangs until the registry's index moves, so a change reaches
:meth:`ServiceWatch.changes` as soon as the registry knows it — no polling delay. When the
registry is unreachable the last good view stays and the loops retry with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from types import MappingProxyType

import consul.aio

from workmesh.registry.client._config import RegistryConfig
from workmesh.registry.client._consul import Backoff, next_index, open_client
from workmesh.registry.client._model import WORKFLOW_TAG, Instance
from workmesh.services.core.durations import parse_go_duration
from workmesh.services.core.errors import Unavailable

log = logging.getLogger(__name__)

View = Mapping[str, tuple[Instance, ...]]


class ServiceWatch:
    """Watches the passing instances of every service carrying `tag`.

    Args:
        config: where the registry is.
        tag: only services (and instances) with this tag are watched.
        wait: the ``wait`` of each blocking query (Go duration); bounds how long a query hangs.
        min_interval: the least time between two queries of one loop, in seconds (rate limit
            against a registry whose index keeps moving).
        hint_ttl: how long a :meth:`mark_unhealthy` hint lasts at most, in seconds.
    """

    def __init__(
        self,
        config: RegistryConfig,
        tag: str = WORKFLOW_TAG,
        *,
        wait: str = "5s",
        min_interval: float = 0.05,
        hint_ttl: float = 10.0,
    ) -> None:
        wait_s = parse_go_duration(wait)
        if wait_s <= 0:
            raise ValueError(f"ServiceWatch.wait: must be > 0, got {wait!r}")
        self.config, self.tag, self.wait = config, tag, wait
        self.min_interval, self.hint_ttl = min_interval, hint_ttl
        self._timeout = wait_s * 1.1 + 5.0  # Consul may add up to wait/16 of jitter
        self._client: consul.aio.Consul | None = None
        self._catalog_task: asyncio.Task | None = None
        self._service_tasks: dict[str, asyncio.Task] = {}
        self._raw: dict[str, tuple[Instance, ...]] = {}  # passing instances per the registry
        self._synced: set[str] = set()  # services whose instances were read at least once
        self._catalog_synced = False
        self._hints: dict[str, asyncio.TimerHandle] = {}
        self._view: View = MappingProxyType({})
        self._version = 0
        self._event = asyncio.Event()
        self._synced_event = asyncio.Event()
        self._closed = False
        self._failing: set[str] = set()  # loops whose last query failed ("" is the catalog)

    @property
    def connected(self) -> bool:
        """False while the last query of any loop failed (the view may be stale)."""
        return not self._failing

    @property
    def instances(self) -> View:
        """Passing instances by service name: the last good view. Services without a passing
        instance are absent."""
        return self._view

    @property
    def synced(self) -> bool:
        """True once the catalog and every tagged service have been read at least once."""
        return self._catalog_synced and self._synced >= set(self._service_tasks)

    async def start(self) -> None:
        """Start watching; returns at once (see :meth:`wait_synced`)."""
        if self._catalog_task is not None:
            return
        self._closed = False
        self._client = client = open_client(self.config, self._timeout)
        self._catalog_task = asyncio.create_task(self._watch_catalog(client), name="workmesh-watch-catalog")

    async def wait_synced(self) -> View:
        """Wait until :attr:`synced`, then return the view."""
        await self._synced_event.wait()
        return self._view

    async def stop(self) -> None:
        """Stop the loops, end every :meth:`changes` iterator, close the connections."""
        self._closed = True
        tasks = [t for t in (self._catalog_task, *self._service_tasks.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._catalog_task = None
        self._service_tasks.clear()
        for handle in self._hints.values():
            handle.cancel()
        self._hints.clear()
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()
        self._event.set()
        self._synced_event.set()

    async def __aenter__(self) -> ServiceWatch:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def changes(self) -> AsyncIterator[View]:
        """Yield the current view, then the whole view after each change, until :meth:`stop`.

        Changes that happen while the consumer is busy are coalesced: it gets the latest view.
        """
        seen = -1
        while not self._closed:
            if self._version == seen:
                event = self._event
                await event.wait()
                continue
            seen = self._version
            yield self._view

    def mark_unhealthy(self, service_id: str) -> None:
        """Leave `service_id` out of the view (e.g. its stream broke) until the registry reports
        a change of its service, or ``hint_ttl`` seconds pass."""
        old = self._hints.pop(service_id, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._hints[service_id] = loop.call_later(self.hint_ttl, self._clear_hints, {service_id})
        self._publish()

    def _clear_hints(self, service_ids: set[str]) -> None:
        cleared = False
        for sid in service_ids & set(self._hints):
            self._hints.pop(sid).cancel()
            cleared = True
        if cleared:
            self._publish()

    def _publish(self) -> None:
        if self.synced:
            self._synced_event.set()
        view = {
            name: kept
            for name, insts in sorted(self._raw.items())
            if (kept := tuple(i for i in insts if i.service_id not in self._hints))
        }
        if view != self._view:
            self._view = MappingProxyType(view)
            self._version += 1
            event, self._event = self._event, asyncio.Event()
            event.set()

    async def _pace(self, last: float) -> None:
        pause = self.min_interval - (time.monotonic() - last)
        if pause > 0:
            await asyncio.sleep(pause)

    async def _watch_catalog(self, client: consul.aio.Consul) -> None:
        index, backoff, last, failing = 0, Backoff(), 0.0, False
        while True:
            await self._pace(last)
            last = time.monotonic()
            try:
                got, services = await client.catalog.services(index=index or None, wait=self.wait)
                got = int(got)
                names = {name for name, tags in (services or {}).items() if self.tag in (tags or ())}
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep the last good view, retry
                if not failing:
                    log.warning("registry at %s unreachable, keeping the last view: %s", self.config.address, exc)
                failing, index = True, 0  # next read is non-blocking: catch up at once
                self._failing.add("")
                await asyncio.sleep(backoff.delay())
                continue
            if failing:
                log.info("registry at %s reachable again", self.config.address)
            failing = False
            self._failing.discard("")
            backoff.reset()
            index = next_index(index, got)
            for gone in set(self._service_tasks) - names:
                self._service_tasks.pop(gone).cancel()
                self._raw.pop(gone, None)
                self._synced.discard(gone)
                self._failing.discard(gone)
            for new in sorted(names - set(self._service_tasks)):
                task = asyncio.create_task(self._watch_service(client, new), name=f"workmesh-watch-{new}")
                self._service_tasks[new] = task
            self._catalog_synced = True
            self._publish()

    async def _watch_service(self, client: consul.aio.Consul, name: str) -> None:
        index, seen_index, backoff, last = 0, 0, Backoff(), 0.0
        while True:
            await self._pace(last)
            last = time.monotonic()
            try:
                got, entries = await client.health.service(
                    name, index=index or None, wait=self.wait, passing=True, tag=self.tag
                )
                got = int(got)
                instances = tuple(
                    sorted((Instance.from_health_entry(e) for e in entries or ()), key=lambda i: i.service_id)
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - unreachable or a malformed answer: retry
                log.debug("health query for %s failed: %s", name, exc)
                index = 0
                self._failing.add(name)
                await asyncio.sleep(backoff.delay())
                continue
            self._failing.discard(name)
            backoff.reset()
            index = next_index(index, got)
            if got != seen_index:
                # The registry has news about this service: it now decides for its instances.
                ids = {i.service_id for i in (*instances, *self._raw.get(name, ()))}
                for sid in ids & set(self._hints):
                    self._hints.pop(sid).cancel()
            seen_index = got
            self._raw[name] = instances
            self._synced.add(name)
            self._publish()


async def find_service(
    config: RegistryConfig, name: str, *, tag: str | None = None, timeout: float = 5.0, passing: bool = True
) -> list[Instance]:
    """The passing instances of service `name` right now (one non-blocking query).

    With ``passing=False``: every registered instance, whatever its health.

    Raises:
        workmesh.services.core.errors.Unavailable: the registry cannot be reached or answered an error.
    """
    client = open_client(config, timeout)
    try:
        _, entries = await client.health.service(name, passing=passing, tag=tag)
    except Exception as exc:  # transport or HTTP error alike: the caller may retry later
        raise Unavailable(f"registry at {config.address}: cannot look up {name!r}: {exc}") from exc
    finally:
        await client.close()
    return sorted((Instance.from_health_entry(e) for e in entries or ()), key=lambda i: i.service_id)
