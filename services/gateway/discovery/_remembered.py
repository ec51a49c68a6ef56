"""Every workflow type the gateway has seen, remembered across restarts in the job store.

"No worker of the type is up → the job waits QUEUED" must hold after a gateway restart too: the
catalog alone knows only the types live workers serve now. :class:`RememberedTypes` keeps each
type's newest declaration (so jobs are still validated before they are stored) with the time a
worker last served it, writes them to the store (when the store keeps them) and reads them back
at start. A type nobody has served for `retention` seconds is forgotten; SubmitJob's NOT_FOUND
then says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from workmesh.services.core.errors import WorkmeshError
from workmesh.v1 import common_pb2

log = logging.getLogger("workmesh.gateway.catalog")

REFRESH = 300.0  # seconds between two writes of "still served" for a type that stays live


@runtime_checkable
class TypeMemory(Protocol):
    """The part of a job store that keeps workflow types across restarts (optional for a store)."""

    async def remember_types(self, items: Sequence[tuple[common_pb2.WorkflowType, dt.datetime]]) -> None: ...

    async def known_types(self) -> Sequence[tuple[common_pb2.WorkflowType, dt.datetime]]: ...

    async def forget_types(self, names: Sequence[str], before: dt.datetime) -> None: ...


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RememberedTypes:
    """The declarations of every type seen, and when a worker last served each.

    Args:
        store: the job store; its optional ``remember_types``/``known_types``/``forget_types``
            keep the types across restarts (without them: this process only).
        retention: seconds a type nobody serves is remembered (None: for ever).
    """

    def __init__(self, store: object | None = None, retention: float | None = 7 * 86400.0) -> None:
        self._store = store if isinstance(store, TypeMemory) else None
        self.retention = retention
        self._types: dict[str, tuple[common_pb2.WorkflowType, dt.datetime]] = {}
        self._live: set[str] = set()
        self._dirty: dict[str, tuple[common_pb2.WorkflowType, dt.datetime]] = {}
        self._written: dict[str, dt.datetime] = {}
        self._flushing: asyncio.Task | None = None
        self._refresher: asyncio.Task | None = None

    async def start(self) -> None:
        """Read the remembered types; forget the ones served too long ago."""
        if self._store is None:
            return
        try:
            rows = await self._store.known_types()
        except WorkmeshError as exc:  # the gateway still serves; live types are learnt again
            log.warning("could not read the remembered workflow types: %s", exc)
            rows = []
        for declaration, seen in rows:
            self._types.setdefault(declaration.name, (declaration, seen))
            self._written[declaration.name] = seen
        expired = [name for name in self._types if self._expired(name)]
        if expired:
            with contextlib.suppress(WorkmeshError):
                await self._store.forget_types(expired, _now() - dt.timedelta(seconds=self.retention or 0))
        self._refresher = asyncio.get_running_loop().create_task(self._refresh(), name="remembered-types")

    async def stop(self) -> None:
        """Write what is not written yet (bounded), then stop."""
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        for name in self._live:
            self._mark(name, _now())
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._flush(), 2.0)

    def served(self, live: Mapping[str, common_pb2.WorkflowType]) -> None:
        """The types live workers serve now (newest declaration each)."""
        now = _now()
        for name in self._live - live.keys():  # gone: remembered as served until now
            self._mark(name, now)
        self._live = set(live)
        for name, declaration in live.items():
            earlier = self._types.get(name)
            self._types[name] = (declaration, now)
            if earlier is None or earlier[0] != declaration:
                self._mark(name, now)

    def get(self, name: str) -> common_pb2.WorkflowType | None:
        """The remembered declaration of a type, unless it was forgotten."""
        entry = self._types.get(name)
        if entry is None or self._expired(name):
            return None
        return entry[0]

    def forgotten(self, name: str) -> bool:
        """Whether the type was seen, but nobody served it for longer than the retention."""
        return name in self._types and self._expired(name)

    def names(self) -> Iterable[str]:
        """The types remembered and not forgotten."""
        return [name for name in self._types if not self._expired(name)]

    def _expired(self, name: str) -> bool:
        if self.retention is None or name in self._live:
            return False
        return (_now() - self._types[name][1]).total_seconds() > self.retention

    def _mark(self, name: str, seen: dt.datetime) -> None:
        if self._store is None:
            return
        self._dirty[name] = (self._types[name][0], seen)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        store = self._store
        if store is None:  # nothing is marked dirty then
            return
        while self._dirty:
            batch, self._dirty = self._dirty, {}
            try:
                await store.remember_types(list(batch.values()))
            except WorkmeshError as exc:  # kept for the next try (the refresher's)
                log.warning("could not remember workflow types: %s", exc)
                self._dirty = {**batch, **self._dirty}
                return
            self._written.update((name, seen) for name, (_, seen) in batch.items())

    async def _refresh(self) -> None:
        # Live types: "still served" now and then, so a gateway that crashes does not leave
        # them looking abandoned since their last change.
        interval = min(REFRESH, (self.retention or REFRESH) / 4)
        while True:
            await asyncio.sleep(interval)
            now = _now()
            for name in self._live:
                if (now - self._written.get(name, now - dt.timedelta(days=1))).total_seconds() >= interval:
                    self._mark(name, now)
            if self._dirty and (self._flushing is None or self._flushing.done()):
                self._flushing = asyncio.get_running_loop().create_task(self._flush())
