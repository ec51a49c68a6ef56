"""Discovery: which workflow types the live workers offer, and which instances serve them.

The catalog follows a ``workmesh.registry.ServiceWatch`` (one Consul service per workflow
type). A worker process may register several types under the same address; the catalog keys
instances by address so each process gets exactly one long-lived gRPC channel and one
``Describe`` call (Consul Meta is too small for parameter schemas). The channel is closed when
the process is gone from the registry and has no job of ours left.

An instance that leaves the registry view while it runs jobs of ours (its health check went
critical: a crash, or a network partition that drops packets without resetting anything) keeps
its state for ``lost_after`` seconds. If it comes back within that window, the same channel and
streams carry on (after a short partition TCP simply delivers what was held up). If it does not,
its streams are ended, so its jobs count as lost and are retried elsewhere; otherwise a stream to
a host that silently vanished would wait for TCP to give up, which takes many minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import grpc

from workmesh.registry import service_name
from workmesh.services.core.tls import TlsConfig
from workmesh.services.gateway.discovery._instance import InstanceState, version_key, version_summaries
from workmesh.services.gateway.discovery._remembered import RememberedTypes
from workmesh.services.gateway.discovery._versions import Requirement, newest
from workmesh.v1 import common_pb2, gateway_pb2, worker_pb2

log = logging.getLogger("workmesh.gateway.catalog")

Change = gateway_pb2.WorkflowTypeChange


class Watch(Protocol):
    """The part of ``workmesh.registry.ServiceWatch`` the catalog uses."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def changes(self) -> Any: ...  # async iterator of {service name: (Instance, ...)}
    def mark_unhealthy(self, service_id: str) -> None: ...


class Catalog:
    """The live workflow types and their instances, kept current from a registry watch.

    Args:
        watch: a started-or-not ServiceWatch; the catalog starts and stops it.
        describe_timeout: seconds one Describe call may take.
        sessions: run jobs over one Session stream per worker that serves it (False: one
            Execute call per job, as for workers that do not).
        lost_after: seconds an instance that left the registry with jobs of ours on it may take
            to come back before those jobs' streams are ended (and the jobs retried).
        tls: channels to the workers use TLS when it has a CA (and present its certificate).
    """

    def __init__(
        self,
        watch: Watch,
        *,
        describe_timeout: float = 5.0,
        sessions: bool = True,
        lost_after: float = 10.0,
        remembered: RememberedTypes | None = None,
        tls: TlsConfig | None = None,
    ) -> None:
        self._watch = watch
        self._tls = tls  # channels to the workers: TLS when it has a CA
        self._lost_after = lost_after
        self._absent: dict[str, InstanceState] = {}  # gone from the view, jobs of ours still on them
        self._describe_timeout = describe_timeout
        self._sessions = sessions
        self._instances: dict[str, InstanceState] = {}
        self._by_type: dict[str, list[InstanceState]] = {}
        self._infos: dict[str, gateway_pb2.WorkflowTypeInfo] = {}
        # Every declaration seen since start, by type and version: a job pinned to a version
        # whose instances are gone for now (a rolling upgrade) is validated and waits queued.
        self._seen: dict[str, dict[str, common_pb2.WorkflowType]] = {}
        self._remembered = remembered or RememberedTypes()  # every type seen (across restarts)
        self._subscribers: set[asyncio.Queue[Change]] = set()
        self._listeners: list[Callable[[Iterable[str]], None]] = []
        self._tasks: set[asyncio.Task] = set()
        self._consumer: asyncio.Task | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Read the types remembered from before, start the watch and follow its views."""
        await self._remembered.start()
        await self._watch.start()
        self._consumer = asyncio.create_task(self._follow(), name="catalog-follow")

    async def stop(self) -> None:
        """Stop following, close every channel."""
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._watch.stop()
        await self._remembered.stop()
        for inst in self._absent.values():
            if inst.absent_timer is not None:
                inst.absent_timer.cancel()
        await asyncio.gather(
            *(inst.close() for inst in [*self._instances.values(), *self._absent.values()]), return_exceptions=True
        )
        self._instances.clear()
        self._absent.clear()

    # -- queries ---------------------------------------------------------------------------
    def workflow_type(self, name: str) -> common_pb2.WorkflowType | None:
        """The newest declaration of a type among its live instances, or None."""
        info = self._infos.get(name)
        return info.type if info is not None else None

    def known_type(self, name: str) -> common_pb2.WorkflowType | None:
        """The live declaration of a type, else the last one seen (also before a restart of
        this gateway) unless nobody served it for the retention, else None.

        Jobs of a type whose instances are all gone for the moment (a restart, a redeploy) are
        accepted and wait queued rather than being refused.
        """
        info = self._infos.get(name)
        return info.type if info is not None else self._remembered.get(name)

    def live_versions(self, name: str) -> dict[str, list[InstanceState]]:
        """The versions of a type its registered, described instances serve, with those instances."""
        out: dict[str, list[InstanceState]] = {}
        for inst in self._by_type.get(name, []):
            out.setdefault(inst.types[name].version, []).append(inst)
        return out

    def declaration(self, name: str, requirement: Requirement) -> common_pb2.WorkflowType | None:
        """The newest declaration of a type matching `requirement`: among the live versions,
        else among those seen before (since start, or remembered across restarts), else None."""
        live = {v: insts[0].types[name] for v, insts in self.live_versions(name).items()}
        for pool in (live, self._seen.get(name, {})):
            best = newest([v for v in pool if requirement.matches(v)])
            if best is not None:
                return pool[best]
        remembered = self._remembered.get(name)
        return remembered if remembered is not None and requirement.matches(remembered.version) else None

    def forgotten(self, name: str) -> float | None:
        """The retention (seconds) after which a type seen before was forgotten, or None."""
        return self._remembered.retention if self._remembered.forgotten(name) else None

    def type_names(self) -> list[str]:
        """Names of the live types, sorted."""
        return sorted(self._infos)

    def instances(self) -> list[InstanceState]:
        """Every worker process in the registry view (one per address, whatever it serves)."""
        return list(self._instances.values())

    def instances_of(self, name: str) -> list[InstanceState]:
        """The registered, described instances serving `name` (the routing candidates)."""
        return self._by_type.get(name, [])

    def infos(self) -> list[gateway_pb2.WorkflowTypeInfo]:
        """Every live type with its instance counts and current free capacity, by name."""
        return [self._with_load(self._infos[name]) for name in sorted(self._infos)]

    def _with_load(self, info: gateway_pb2.WorkflowTypeInfo) -> gateway_pb2.WorkflowTypeInfo:
        out = gateway_pb2.WorkflowTypeInfo()
        out.CopyFrom(info)
        insts = {i.key: i for i in self._by_type.get(info.type.name, [])}
        out.free_capacity = sum(max(0, i.capacity - i.in_flight) for i in insts.values() if i.available)
        for entry in out.instances:
            inst = insts.get(entry.address)
            if inst is not None:
                entry.in_flight = inst.in_flight
        for summary in out.versions:
            summary.free_capacity = sum(
                max(0, i.capacity - i.in_flight)
                for a in summary.addresses
                if (i := insts.get(a)) is not None and i.available
            )
        return out

    def subscribe(self) -> asyncio.Queue[Change]:
        """A queue that receives the current types (initial=True), then every change."""
        queue: asyncio.Queue[Change] = asyncio.Queue()
        for info in self.infos():
            queue.put_nowait(Change(kind=Change.KIND_ADDED, type=info, initial=True))
        self._subscribers.add(queue)
        return queue

    @property
    def subscriber_count(self) -> int:
        """How many queues from :meth:`subscribe` are fed now."""
        return len(self._subscribers)

    def unsubscribe(self, queue: asyncio.Queue[Change]) -> None:
        """Stop sending changes to a queue from :meth:`subscribe`."""
        self._subscribers.discard(queue)

    def add_listener(self, callback: Callable[[Iterable[str]], None]) -> None:
        """Call `callback(type_names)` whenever instances of those types may take jobs again."""
        self._listeners.append(callback)

    # -- feedback from dispatch --------------------------------------------------------------
    def mark_lost(self, inst: InstanceState) -> None:
        """The connection to `inst` failed: stop routing to it and tell the registry watch."""
        if not inst.healthy:
            return
        inst.healthy = False
        for service_id in inst.service_ids:
            with contextlib.suppress(Exception):
                self._watch.mark_unhealthy(service_id)
        self._rebuild()

    def mark_busy(self, inst: InstanceState, seconds: float) -> None:
        """The worker said it is full (RESOURCE_EXHAUSTED): skip it for a moment."""
        inst.busy_until = time.monotonic() + seconds
        loop = asyncio.get_running_loop()
        loop.call_later(seconds, self._notify, inst.serves())

    def released(self, inst: InstanceState) -> None:
        """One of our jobs on `inst` ended; close its channel if it left the registry."""
        if not inst.present and inst.in_flight == 0:
            if self._absent.get(inst.key) is inst:
                del self._absent[inst.key]
                if inst.absent_timer is not None:
                    inst.absent_timer.cancel()
            self._spawn(inst.close())
        elif inst.available:
            self._notify(inst.serves())

    # -- following the registry --------------------------------------------------------------
    async def _follow(self) -> None:
        async for view in self._watch.changes():
            try:
                self._apply(view)
            except Exception:  # a bad view must not end discovery
                log.exception("could not apply a registry view")

    def _apply(self, view: Mapping[str, Iterable[Any]]) -> None:
        seen: dict[str, tuple[str, int, set[str], set[str]]] = {}
        checks: dict[str, dict[tuple[str, str], gateway_pb2.InstanceCheck]] = {}
        for instances in view.values():
            for item in instances:
                key = f"{item.address}:{item.port}"
                _, _, ids, types = seen.setdefault(key, (item.address, item.port, set(), set()))
                ids.add(item.service_id)
                for sid, name, status, output in getattr(item, "checks", ()):
                    checks.setdefault(key, {})[sid, name] = gateway_pb2.InstanceCheck(
                        service_id=sid, name=name, status=status, output=output
                    )
                wf = item.meta.get("workflow_type") if item.meta else None
                if wf:
                    types.add(wf)
        for key, gone in list(self._instances.items()):
            if key not in seen:
                del self._instances[key]
                gone.present = False
                if gone.in_flight == 0:
                    self._spawn(gone.close())
                else:
                    self._absent[key] = gone
                    gone.absent_timer = asyncio.get_running_loop().call_later(self._lost_after, self._give_up, gone)
        for key, (address, port, ids, types) in seen.items():
            inst: InstanceState | None = self._instances.get(key)
            if inst is None and key in self._absent:
                # Back within the window: the same channel and streams go on.
                inst = self._instances[key] = self._absent.pop(key)
                inst.present = True
                if inst.absent_timer is not None:
                    inst.absent_timer.cancel()
                    inst.absent_timer = None
                log.info("instance %s is back in the registry with %d job(s) of ours", inst.name, inst.in_flight)
            if inst is None:
                inst = self._instances[key] = InstanceState(address, port, sessions=self._sessions, tls=self._tls)
            new_ids = not ids <= inst.service_ids
            inst.service_ids, inst.registered_types = ids, types
            inst.checks = [c for _, c in sorted(checks.get(key, {}).items())]
            inst.healthy = True
            if new_ids or not inst.described:
                # A new registration (new process on the same port, or new type): ask again.
                self._spawn(self._describe(inst))
        self._rebuild()

    def _give_up(self, inst: InstanceState) -> None:
        if self._absent.get(inst.key) is not inst:
            return
        del self._absent[inst.key]
        inst.absent_timer = None
        log.warning(
            "instance %s left the registry %gs ago with %d job(s) of ours: ending their streams",
            inst.name,
            self._lost_after,
            inst.in_flight,
        )
        self._spawn(inst.close())  # its calls fail like a broken connection: the jobs are lost

    async def _describe(self, inst: InstanceState) -> None:
        delay = 0.05
        while inst.present and self._instances.get(inst.key) is inst:
            try:
                reply = await inst.stub.Describe(worker_pb2.DescribeRequest(), timeout=self._describe_timeout)
            except grpc.aio.AioRpcError as exc:
                log.warning("Describe %s failed (%s); retrying in %.2fs", inst.key, exc.code(), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            inst.instance_id = reply.instance_id
            inst.capacity = max(1, reply.capacity)
            inst.session_supported = reply.session
            inst.types = {t.name: t for t in reply.types}
            inst.described = True
            self._rebuild()
            return

    def _rebuild(self) -> None:
        by_type: dict[str, list[InstanceState]] = {}
        for inst in self._instances.values():
            if inst.described:
                for name in inst.serves():
                    by_type.setdefault(name, []).append(inst)
        infos: dict[str, gateway_pb2.WorkflowTypeInfo] = {}
        for name, insts in by_type.items():
            seen = self._seen.setdefault(name, {})
            for inst in insts:
                seen[inst.types[name].version] = inst.types[name]
            healthy = [i for i in insts if i.healthy]
            newest = max(insts, key=lambda i: version_key(i.types[name].version)).types[name]
            infos[name] = gateway_pb2.WorkflowTypeInfo(
                type=newest,
                healthy_instances=len(healthy),
                capacity=sum(i.capacity for i in healthy),
                instances=[
                    gateway_pb2.InstanceInfo(
                        address=i.key,
                        instance_id=i.instance_id,
                        version=i.types[name].version,
                        capacity=i.capacity,
                        healthy=i.healthy,
                        checks=[c for c in i.checks if c.service_id in ("", f"{service_name(name)}-{i.instance_id}")]
                        or i.checks,
                    )
                    for i in sorted(insts, key=lambda i: i.key)
                ],
                versions=version_summaries(name, insts),
            )
        self._by_type = by_type
        self._remembered.served({name: info.type for name, info in infos.items()})
        old, self._infos = self._infos, infos
        changes: list[Change] = []
        for name in sorted(old.keys() - infos.keys()):
            changes.append(Change(kind=Change.KIND_REMOVED, type=old[name]))
        for name in sorted(infos):
            if name not in old:
                changes.append(Change(kind=Change.KIND_ADDED, type=self._with_load(infos[name])))
            elif old[name] != infos[name]:
                changes.append(Change(kind=Change.KIND_UPDATED, type=self._with_load(infos[name])))
        for change in changes:
            for queue in self._subscribers:
                queue.put_nowait(change)
        self._notify(infos.keys() | old.keys())  # a type gone: its pinned jobs are checked again

    def _notify(self, names: Iterable[str]) -> None:
        names = list(names)
        if names:
            for callback in self._listeners:
                callback(names)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
