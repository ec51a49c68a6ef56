"""Fuzz the embedded registry's HTTP API (issue 9): random requests against a real registry
process on a free loopback port.

Asserted for every request: an answer, and never a 5xx except the two Consul itself gives
(named in :func:`allowed_5xx`). Asserted once the fuzz stops: the process is still up, it is
not busy (its CPU time over a quiet second, read from /proc, stays small), and it still
registers, health-checks and deregisters correctly.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from grpc_health.v1 import health_pb2
from hypothesis import given

from tests.fuzz.profiles import cpu_seconds
from tests.fuzz.registry_http import CHECK_IDS, SERVICE_IDS, Request, requests, send
from tests.support import eventually, free_port, wait_for_port
from workmesh.registry import EmbeddedRegistry  # noqa: F401 - the process under test serves this

HOST = "127.0.0.1"
ANSWER_WITHIN = 10.0  # seconds; every fuzz query that blocks says wait= of at most 1 s
# CPU seconds per quiet wall second. A spinning registry uses ~1.0 (still > 0.5 with this
# machine's load); what the fuzz legitimately leaves — at most ~25 checks from the id pools,
# each probed once a second at ~3 ms of CPU a probe — measured 0.01-0.02; an empty one ~0.005.
QUIET_CPU_WITH_LEFTOVERS = 0.25
QUIET_CPU_EMPTY = 0.1


def allowed_5xx(request: Request, status: int, body: bytes) -> str | None:
    """Why a 5xx answer to `request` is right, or None when it is a defect."""
    text = body.decode(errors="replace")
    dcs = [value for key, value in request.query if key == "dc"]
    no_path = text == "No path to datacenter" or (request.method == "HEAD" and not text)  # HEAD: no body
    if status == 500 and no_path and any(dc not in ("", "dc1") for dc in dcs):
        return "another datacenter: Consul answers 500 'No path to datacenter' too"
    if (
        status == 500
        and re.match(r"/v1/agent/check/(pass|warn|fail|update)/", request.path)
        and "does not have an associated TTL" in text
    ):
        return "a TTL heartbeat to a non-TTL check: Consul answers 500 (updateTTLCheck) too"
    return None


class Registry:
    """A `workmesh registry` process and plain calls to it."""

    def __init__(self, procs) -> None:
        self.port = free_port()
        self.proc = procs.workmesh("registry", "--host", HOST, "--port", str(self.port), name="registry")
        self.procs = procs
        wait_for_port(self.port)

    def call(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        raw = None if body is None else json.dumps(body).encode()
        status, reply = send(HOST, self.port, Request(method, path, body=raw), ANSWER_WITHIN)
        try:
            return status, json.loads(reply) if reply else None
        except ValueError:
            return status, reply.decode(errors="replace")

    def alive(self) -> None:
        assert self.proc.poll() is None, (
            f"registry exited {self.proc.returncode}: {self.procs.log_of(self.proc)[-3000:]}"
        )

    def quiet_cpu(self, seconds: float = 1.0) -> float:
        """CPU seconds the registry used per wall second while nobody talked to it."""
        before, start = cpu_seconds(self.proc.pid), time.monotonic()
        time.sleep(seconds)  # the measurement window itself
        return (cpu_seconds(self.proc.pid) - before) / (time.monotonic() - start)


@pytest.fixture
def registry(procs):
    return Registry(procs)


@pytest.fixture
def health_port():
    """A real grpc.health.v1 server for the fuzzed GRPC checks to probe."""
    from concurrent import futures

    import grpc
    from grpc_health.v1 import health, health_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    servicer.set("svc", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port(f"{HOST}:0")
    server.start()
    yield port
    server.stop(0)


def fuzz(registry: Registry, health_port: int, profile) -> dict[str, int]:
    """Send the profile's worth of random requests; returns the answers counted by class."""
    seen: dict[str, int] = {}

    @profile
    @given(request=requests(health_port))
    def one(request: Request) -> None:
        try:
            status, body = send(HOST, registry.port, request, ANSWER_WITHIN)
        except (TimeoutError, OSError) as exc:
            registry.alive()
            raise AssertionError(f"no answer to {request}: {exc!r}") from exc
        klass = f"{status // 100}xx"
        if status >= 500:
            reason = allowed_5xx(request, status, body)
            assert reason, f"{status} {body[:500]!r} for {request}"
            klass = f"{status} ({reason.split(':')[0]})"
        seen[klass] = seen.get(klass, 0) + 1

    one()
    return seen


def assert_still_correct(registry: Registry, health_port: int) -> None:
    """Afterwards: not busy, and a fresh registration works end to end."""
    registry.alive()
    left = registry.call("GET", "/v1/agent/checks")[1]
    busy = registry.quiet_cpu()
    assert busy < QUIET_CPU_WITH_LEFTOVERS, f"{busy:.2f} CPU s/s with {len(left)} checks left: {left}"
    for sid in SERVICE_IDS:
        registry.call("PUT", f"/v1/agent/service/deregister/{sid}")
    for cid in CHECK_IDS:
        registry.call("PUT", f"/v1/agent/check/deregister/{cid}")
    assert registry.call("GET", "/v1/agent/services") == (200, {})
    assert registry.call("GET", "/v1/agent/checks") == (200, {})
    busy = registry.quiet_cpu()
    assert busy < QUIET_CPU_EMPTY, f"{busy:.2f} CPU s/s with nothing registered"

    status, _ = registry.call(
        "PUT",
        "/v1/agent/service/register",
        {
            "Name": "after",
            "ID": "after-1",
            "Port": health_port,
            "Checks": [{"GRPC": f"{HOST}:{health_port}/svc", "Interval": "1s"}, {"TTL": "30s"}],
        },
    )
    assert status == 200
    assert registry.call("PUT", "/v1/agent/check/pass/service:after-1:2")[0] == 200
    eventually(
        lambda: (
            [e["Service"]["ID"] for e in registry.call("GET", "/v1/health/service/after?passing")[1]] == ["after-1"]
        ),
        timeout=15,
    )
    assert registry.call("PUT", "/v1/agent/service/deregister/after-1")[0] == 200
    assert registry.call("GET", "/v1/health/service/after")[1] == []
    registry.alive()


def _run(registry, health_port, fuzz_profile, capsys) -> None:
    started = time.monotonic()
    seen = fuzz(registry, health_port, fuzz_profile)
    elapsed = time.monotonic() - started
    assert_still_correct(registry, health_port)
    with capsys.disabled():
        print(f"\nregistry fuzz: {sum(seen.values())} requests in {elapsed:.1f}s: {seen}")


def test_random_http_requests_never_break_the_registry(registry, health_port, fuzz_profile, capsys):
    _run(registry, health_port, fuzz_profile, capsys)


@pytest.mark.fuzz_long
@pytest.mark.timeout(1800)
def test_random_http_requests_never_break_the_registry_long(registry, health_port, fuzz_profile, capsys):
    _run(registry, health_port, fuzz_profile, capsys)
