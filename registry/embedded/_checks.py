"""The embedded registry's health checking: GRPC probes, TTL expiry, reaping.

Like a Consul agent, the registry itself probes each GRPC check target with
``grpc.health.v1.Health/Check(service=<part after '/'>)`` every Interval (the first probe runs
right after registration), turns TTL checks critical when their TTL passes, and deregisters
services whose check stayed critical for DeregisterCriticalServiceAfter.

Intervals below :data:`MIN_INTERVAL` (Consul's ``checks.MinInterval``, 1 s) are raised to it,
as Consul does, with a warning: a JSON number is nanoseconds, so ``"Interval": 1`` would
otherwise probe in a busy loop. The probe loop enforces the floor itself, whatever definition
it is handed. TTL checks expire on a timer set for the earliest deadline (not on a poll).
Consul enforces a 1-minute minimum on DeregisterCriticalServiceAfter and reaps every 30 s;
the embedded registry takes any value and reaps every ``tick`` seconds, so tests and
one-machine meshes can use short values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from workmesh.registry.embedded._decode import CheckDef
from workmesh.registry.embedded._state import CRITICAL, PASSING, RegistryState
from workmesh.registry.embedded._tlscheck import tls_channel

log = logging.getLogger(__name__)

_DEFAULT_TIMEOUT = 10.0  # Consul's default check timeout
MIN_INTERVAL = 1.0  # Consul's checks.MinInterval


class CheckRunner:
    """Runs the checks of a :class:`RegistryState` while started.

    Args:
        state: the registry state; the runner follows its check set through a listener.
        tick: seconds between TTL-expiry and reaper passes.
    """

    def __init__(self, state: RegistryState, tick: float = 0.25, ca_file: str = "") -> None:
        self.state, self.tick = state, tick
        self.ca_file = ca_file  # what GRPCUseTLS checks verify against (default: the system's CAs)
        self._probes: dict[str, tuple[CheckDef, asyncio.Task]] = {}
        self._housekeeping: asyncio.Task | None = None
        self._synced_version = -1
        self._ttl_timer: asyncio.TimerHandle | None = None
        self._ttl_at: float | None = None
        state.add_listener(self.sync)
        state.add_listener(self._arm_ttl)

    def start(self) -> None:
        if self._housekeeping is None:
            self._housekeeping = asyncio.create_task(self._housekeep(), name="registry-housekeeping")
            self.sync()
            self._arm_ttl()

    async def stop(self) -> None:
        tasks = [task for _, task in self._probes.values()]
        if self._housekeeping is not None:
            tasks.append(self._housekeeping)
            self._housekeeping = None
        self._probes.clear()
        self._synced_version = -1
        self._disarm_ttl()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def sync(self) -> None:
        """Start probes for new or changed GRPC checks, stop those of removed ones."""
        # Called after every write; only additions and removals of checks concern the probes.
        if self._housekeeping is None or self._synced_version == self.state.checks_version:
            return
        self._synced_version = self.state.checks_version
        wanted = self.state.grpc_checks()
        for cid in list(self._probes):
            cdef, task = self._probes[cid]
            if wanted.get(cid) != cdef:
                task.cancel()
                del self._probes[cid]
        for cid, cdef in wanted.items():
            if cid not in self._probes:
                if cdef.interval < MIN_INTERVAL:
                    log.warning(
                        "check %s has interval %gs below the minimum: probing every %gs",
                        cid,
                        cdef.interval,
                        MIN_INTERVAL,
                    )
                task = asyncio.create_task(self._probe(cid, cdef), name=f"grpc-check-{cid}")
                self._probes[cid] = (cdef, task)

    def _arm_ttl(self) -> None:
        """Keep one timer at the earliest TTL deadline (after every write and every expiry)."""
        if self._housekeeping is None:
            return
        deadline = self.state.next_ttl_deadline()
        if deadline == self._ttl_at:
            return
        self._disarm_ttl()
        if deadline is not None:
            self._ttl_at = deadline
            delay = max(0.0, deadline - self.state.clock())
            self._ttl_timer = asyncio.get_running_loop().call_later(delay, self._ttl_due)

    def _disarm_ttl(self) -> None:
        if self._ttl_timer is not None:
            self._ttl_timer.cancel()
        self._ttl_timer = self._ttl_at = None

    def _ttl_due(self) -> None:
        self._ttl_timer = self._ttl_at = None
        try:
            # A heartbeat that changed nothing moved a deadline without a write: then this
            # finds nothing due and the timer is set again for the new earliest deadline.
            self.state.expire_ttls()
        except Exception:  # a bug here must not stop health checking
            log.exception("registry TTL expiry failed")
        self._arm_ttl()

    async def _housekeep(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            try:
                for service_id in self.state.reap():
                    log.info("deregistered %s: critical longer than its DeregisterCriticalServiceAfter", service_id)
            except Exception:  # a bug here must not stop health checking
                log.exception("registry housekeeping failed")

    async def _probe(self, check_id: str, cdef: CheckDef) -> None:
        target, _, service = cdef.grpc.partition("/")
        interval = max(cdef.interval, MIN_INTERVAL)
        timeout = cdef.timeout or min(interval, _DEFAULT_TIMEOUT)
        loop = asyncio.get_running_loop()
        channel: grpc.aio.Channel | None = None
        try:
            while True:
                started = loop.time()
                try:
                    if channel is None:
                        channel = (
                            await tls_channel(target, cdef, self.ca_file, timeout)
                            if cdef.grpc_use_tls
                            else grpc.aio.insecure_channel(target)
                        )
                    # types-grpcio-health-checking declares HealthStub without its methods.
                    reply = await health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]
                        health_pb2.HealthCheckRequest(service=service), timeout=timeout
                    )
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        status, output = PASSING, f"gRPC check {cdef.grpc}: success"
                    else:
                        state_name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
                        status, output = CRITICAL, f"gRPC check {cdef.grpc}: failed with status {state_name}"
                except grpc.aio.AioRpcError as exc:
                    status = CRITICAL
                    output = f"gRPC check {cdef.grpc}: {exc.code().name}: {exc.details()}"
                    # A fresh channel next time: a restarted target is seen at once instead of
                    # after grpc's reconnect backoff.
                    if channel is not None:  # None: opening the TLS channel failed
                        await channel.close()
                    channel = None
                except OSError as exc:  # TLSSkipVerify: the certificate could not be fetched
                    status, output = CRITICAL, f"gRPC check {cdef.grpc}: TLS handshake failed: {exc}"
                try:
                    self.state.set_check(check_id, status, output)
                except KeyError:
                    return  # deregistered while probing
                await asyncio.sleep(max(0.0, started + interval - loop.time()))
        finally:
            if channel is not None:
                await channel.close()
