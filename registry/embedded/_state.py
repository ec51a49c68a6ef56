"""The embedded registry's catalog: services, checks and Consul-style indexes. No I/O.

Every write that changes something takes the next index (like a Raft index in Consul) and
stamps it on what it touched: the catalog-wide services index (``/v1/catalog/services``) and
the per-service-name index (``/v1/health/service/<name>``, ``/v1/catalog/service/<name>``).
Per-name indexes survive deregistration as tombstones, so an index never goes backwards while
the process lives. Writes that change nothing (an identical re-registration, a check result
equal to the last one) take no index, so blocking queries do not wake for nothing.
The Consul-shaped JSON of the reads is in :mod:`._views`, the records in :mod:`._model`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable

from workmesh.registry.embedded._decode import CheckDef, ServiceDef
from workmesh.registry.embedded._model import CRITICAL, DATACENTER, PASSING, WARNING, Check, Service
from workmesh.registry.embedded._views import CatalogViews

__all__ = ["CRITICAL", "DATACENTER", "PASSING", "WARNING", "Check", "RegistryState", "Service"]


def _check_ids(sdef: ServiceDef) -> list[str]:
    # Consul's rule: "service:<id>" for a single check, "service:<id>:<n>" (1-based) for several.
    ids = []
    for n, cdef in enumerate(sdef.checks, start=1):
        default = f"service:{sdef.service_id}" + (f":{n}" if len(sdef.checks) > 1 else "")
        ids.append(cdef.check_id or default)
    return ids


class RegistryState(CatalogViews):
    """Services and checks of a single-node registry.

    Args:
        node_name: the one node's name.
        node_address: its address; instances without an Address are reached there.
        clock: monotonic clock, injectable for tests.
    """

    def __init__(
        self,
        node_name: str = "workmesh-registry",
        node_address: str = "127.0.0.1",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node_name, self.node_address, self.clock = node_name, node_address, clock
        self.node_id = str(uuid.uuid4())
        self.index = 1
        self.services: dict[str, Service] = {}
        self.checks: dict[str, Check] = {}
        self._by_name: dict[str, dict[str, Service]] = {}
        self._name_index: dict[str, int] = {}
        self._services_index = 1
        self.checks_version = 0  # moves when checks are added or removed, not on results
        self._listeners: list[Callable[[], None]] = []

    # -- writes ---------------------------------------------------------------------------
    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after every write that took an index."""
        self._listeners.append(listener)

    def _commit(self, names: Iterable[str], catalog: bool) -> int:
        self.index += 1
        for name in names:
            self._name_index[name] = self.index
        if catalog:
            self._services_index = self.index
        return self.index

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()

    def register(self, sdef: ServiceDef, *, replace_existing_checks: bool = False) -> bool:
        """Add or replace a service and its checks; returns False when nothing changed.

        A re-registered check keeps its status unless the definition states one; checks of the
        old registration that the new one lacks are kept unless `replace_existing_checks`
        (Consul's ``replace-existing-checks``).
        """
        now = self.clock()
        old = self.services.get(sdef.service_id)
        own = dict(zip(_check_ids(sdef), sdef.checks, strict=True))  # one id twice: the last one counts
        ids = list(own)
        if old is not None and old.definition == sdef and old.check_ids[: len(ids)] == ids:
            return False
        keep = [] if old is None or replace_existing_checks else [c for c in old.check_ids if c not in own]
        names = {sdef.name} | ({old.name} if old else set())
        for cid in ids:
            # Check ids are node-wide: taking one over from another service (or the node)
            # takes it away from there, or that service would list, keep or remove it too.
            prev = self.checks.get(cid)
            if prev is not None and prev.service_id != sdef.service_id:
                names |= set(self._names_of(prev))
                self._detach(prev)
        index = self._commit(names, catalog=True)
        if old is not None:
            for cid in old.check_ids:
                if cid not in keep and cid not in ids:
                    self.checks.pop(cid, None)
            self._by_name.get(old.name, {}).pop(old.service_id, None)
            if not self._by_name.get(old.name):
                self._by_name.pop(old.name, None)
        service = Service(
            sdef, create_index=old.create_index if old else index, modify_index=index, check_ids=ids + keep
        )
        self.services[sdef.service_id] = service
        self._by_name.setdefault(sdef.name, {})[sdef.service_id] = service
        for cid, cdef in own.items():
            prev = self.checks.get(cid)
            status = cdef.status or (prev.status if prev else CRITICAL)
            check = Check(
                cdef,
                check_id=cid,
                name=cdef.name or f"Service '{sdef.name}' check",
                service_id=sdef.service_id,
                service_name=sdef.name,
                status=status,
                output=prev.output if prev else "",
                create_index=prev.create_index if prev else index,
                modify_index=index,
            )
            check.critical_since = (
                (prev.critical_since if prev and prev.critical_since is not None else now)
                if status == CRITICAL
                else None
            )
            if cdef.kind == "ttl":
                check.ttl_deadline = now + cdef.ttl
            self.checks[cid] = check
        for cid in keep:
            self.checks[cid].service_name = sdef.name
        self.checks_version += 1
        self._notify()
        return True

    def deregister(self, service_id: str) -> bool:
        """Remove a service and its checks; False if it is unknown."""
        service = self.services.pop(service_id, None)
        if service is None:
            return False
        for cid in service.check_ids:
            self.checks.pop(cid, None)
        instances = self._by_name.get(service.name, {})
        instances.pop(service_id, None)
        if not instances:
            self._by_name.pop(service.name, None)
        self._commit([service.name], catalog=True)
        self.checks_version += 1
        self._notify()
        return True

    def set_check(self, check_id: str, status: str, output: str) -> bool:
        """Record a check result; returns False when status and output are unchanged.

        Raises:
            KeyError: unknown check id.
        """
        check = self.checks[check_id]
        if check.status == status and check.output == output:
            return False
        if status == CRITICAL:
            if check.critical_since is None:
                check.critical_since = self.clock()
        else:
            check.critical_since = None
        check.status, check.output = status, output
        check.modify_index = self._commit(self._names_of(check), catalog=False)
        self._notify()
        return True

    def _names_of(self, check: Check) -> list[str]:
        # A node check (no service) counts for every service of the node, as in Consul.
        return [check.service_name] if check.service_id else list(self._by_name)

    def register_check(self, cdef: CheckDef, service_id: str = "") -> None:
        """Add or replace a check (``PUT /v1/agent/check/register``) of a service, or of the
        node when `service_id` is empty. It starts critical unless it states a status.

        Raises:
            KeyError: `service_id` names no registered service.
        """
        service = self.services[service_id] if service_id else None
        now, cid = self.clock(), cdef.check_id
        prev = self.checks.get(cid)
        if prev is not None:
            self._detach(prev)
        status = cdef.status or CRITICAL
        check = Check(
            cdef,
            check_id=cid,
            name=cdef.name,
            service_id=service_id,
            service_name=service.name if service else "",
            status=status,
            critical_since=now if status == CRITICAL else None,
            ttl_deadline=now + cdef.ttl if cdef.kind == "ttl" else None,
        )
        if service is not None:
            service.check_ids.append(cid)
        self.checks[cid] = check
        check.create_index = check.modify_index = self._commit(self._names_of(check), catalog=False)
        self.checks_version += 1
        self._notify()

    def deregister_check(self, check_id: str) -> bool:
        """Remove a check; False if it is unknown."""
        check = self.checks.get(check_id)
        if check is None:
            return False
        self._detach(check)
        self._commit(self._names_of(check), catalog=False)
        self.checks_version += 1
        self._notify()
        return True

    def _detach(self, check: Check) -> None:
        self.checks.pop(check.check_id, None)
        service = self.services.get(check.service_id)
        if service is not None and check.check_id in service.check_ids:
            service.check_ids.remove(check.check_id)

    def update_ttl(self, check_id: str, status: str, output: str) -> bool:
        """A TTL check's heartbeat (``/v1/agent/check/pass|warn|fail|update``).

        Raises:
            KeyError: unknown check id.
            ValueError: the check is not a TTL check.
        """
        check = self.checks[check_id]
        if check.kind != "ttl":
            raise ValueError(f"CheckID {check_id!r} does not have an associated TTL")
        # Only a heartbeat re-arms the TTL: an expiry that re-armed it would expire again
        # every TTL for ever (with a 1 ns TTL, in a busy loop).
        check.ttl_deadline = self.clock() + check.definition.ttl
        return self.set_check(check_id, status, output)

    def expire_ttls(self) -> list[str]:
        """Turn TTL checks whose TTL passed critical; returns their ids."""
        now, expired = self.clock(), []
        for check in list(self.checks.values()):
            if check.ttl_deadline is not None and check.ttl_deadline <= now:
                check.ttl_deadline = None  # expired once; the next heartbeat re-arms it
                if self.set_check(check.check_id, CRITICAL, "TTL expired"):
                    expired.append(check.check_id)
        return expired

    def reap(self) -> list[str]:
        """Deregister services with a check critical for longer than its
        DeregisterCriticalServiceAfter; returns their ids."""
        now, doomed = self.clock(), set()
        for check in self.checks.values():
            after = check.definition.deregister_after
            if (
                check.service_id
                and after > 0
                and check.critical_since is not None
                and now - check.critical_since >= after
            ):
                doomed.add(check.service_id)
        for service_id in sorted(doomed):
            self.deregister(service_id)
        return sorted(doomed)

    # -- reads (the JSON ones are CatalogViews') ------------------------------------------------
    def services_index(self) -> int:
        return self._services_index

    def name_index(self, name: str) -> int:
        return self._name_index.get(name, self._services_index)

    def next_ttl_deadline(self) -> float | None:
        """The earliest time (on :attr:`clock`) a TTL check expires, None when none is armed."""
        return min((c.ttl_deadline for c in self.checks.values() if c.ttl_deadline is not None), default=None)

    def grpc_checks(self) -> dict[str, CheckDef]:
        """The GRPC checks to run: check id -> definition."""
        return {cid: c.definition for cid, c in self.checks.items() if c.kind == "grpc"}
