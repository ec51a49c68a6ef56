"""Behaviour only the embedded registry can show here: restarts on the same port, short
DeregisterCriticalServiceAfter (Consul's minimum is 1 minute, reaped every 30 s), process
lifecycle, and a mesh-sized load."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from tests.registry.conftest import api_for, health_target, unique
from tests.registry.test_client import next_view, registration, watching
from tests.support import eventually, eventually_async, free_port, wait_for_port
from workmesh.registry import EmbeddedRegistry, Registrar, RegistryConfig, find_service
from workmesh.registry.embedded._checks import MIN_INTERVAL
from workmesh.registry.embedded._decode import CheckDef, ServiceDef

pytestmark = pytest.mark.embedded_only


async def _listed(api, service_id: str) -> bool:
    _, services, _ = await api.get("/v1/agent/services")
    return service_id in services


async def test_registrar_reregisters_after_a_registry_restart_on_the_same_port():
    name = unique()
    async with health_target(name) as target:
        registry = EmbeddedRegistry()
        await registry.start()
        port = registry.port
        reg = registration(name, "a", target.port)
        async with Registrar(registry.config, [reg], resync_interval=0.2):
            await registry.stop()  # forgets everything, like `consul agent -dev`
            async with EmbeddedRegistry(port=port) as again, api_for(again.config) as api:
                await eventually_async(lambda: _listed(api, reg.service_id), timeout=10)
                assert len(await api.health(name, passing=1)) == 1


async def test_registrar_started_while_the_registry_is_down_registers_once_it_is_up():
    name = unique()
    config = RegistryConfig(address=f"127.0.0.1:{free_port()}")
    async with health_target(name) as target:
        reg = registration(name, "a", target.port)
        async with Registrar(config, [reg], resync_interval=0.2) as registrar:  # does not raise
            assert registrar.registered == frozenset()
            async with EmbeddedRegistry(port=config.port), api_for(config) as api:
                await eventually_async(lambda: _listed(api, reg.service_id), timeout=10)


async def test_watch_keeps_the_last_view_while_the_registry_is_down_and_recovers():
    name = unique()
    async with health_target(name) as target:
        registry = EmbeddedRegistry()
        await registry.start()
        port = registry.port
        async with watching(registry.config, wait="2s") as watch:
            changes = watch.changes()
            async with Registrar(
                registry.config, [registration(name, "a", target.port, version="1")], resync_interval=0.2
            ):
                before = await next_view(changes, lambda v: name in v)
                await registry.stop()
                await eventually_async(_async(lambda: not watch.connected), timeout=10)
                assert watch.instances == before  # the last good view is still served
            # A new registry on the same port starts over with small indexes: the watch must
            # reset its index and see the new state (a different instance) instead of waiting.
            async with (
                EmbeddedRegistry(port=port) as again,
                Registrar(again.config, [registration(name, "b", target.port, version="2")]),
            ):
                view = await next_view(changes, lambda v: [i.service_id for i in v.get(name, ())] == [f"{name}-b"])
                assert view[name][0].meta["version"] == "2"
                await eventually_async(_async(lambda: watch.connected), timeout=10)


def _async(check):
    async def run():
        return check()

    return run


async def test_a_blocking_query_ahead_of_the_registry_answers_at_once_with_a_lower_index():
    async with EmbeddedRegistry() as registry, api_for(registry.config) as api:
        _, _, index = await api.get("/v1/catalog/services")
        status, _, answered = await asyncio.wait_for(api.get("/v1/catalog/services", index=index + 1000, wait="5m"), 10)
        assert status == 200
        assert answered == index < index + 1000


async def test_stopping_the_registry_releases_blocked_queries():
    registry = EmbeddedRegistry()
    await registry.start()
    async with api_for(registry.config) as api:
        _, _, index = await api.get("/v1/catalog/services")
        blocked = asyncio.create_task(api.get("/v1/catalog/services", index=index, wait="5m"))
        await asyncio.sleep(0.1)  # let it block (the outcome below does not depend on it)
        await asyncio.wait_for(registry.stop(), 10)
        status, _, _ = await asyncio.wait_for(blocked, 10)
        assert status == 200


async def test_deregister_critical_service_after_reaps_a_dead_instance():
    name = unique()
    async with EmbeddedRegistry() as registry, api_for(registry.config) as api, health_target(name) as target:
        await api.register(
            {
                "Name": name,
                "ID": f"{name}-1",
                "Port": target.port,
                "Check": {
                    "GRPC": f"127.0.0.1:{target.port}/{name}",
                    "Interval": "200ms",
                    "Status": "passing",
                    "DeregisterCriticalServiceAfter": "500ms",
                },
            }
        )
        await api.register(
            {"Name": name, "ID": f"{name}-ttl", "Check": {"TTL": "300ms", "DeregisterCriticalServiceAfter": "500ms"}}
        )
        assert await _listed(api, f"{name}-1")
        await target.stop()  # the worker dies: critical, then reaped

        async def reaped():
            return not await _listed(api, f"{name}-1") and not await _listed(api, f"{name}-ttl")

        await eventually_async(reaped, timeout=10)
        _, catalog, _ = await api.get("/v1/catalog/services")
        assert name not in catalog
        _, checks, _ = await api.get("/v1/agent/checks")
        assert not [c for c in checks.values() if c["ServiceName"] == name]


async def test_ten_services_of_ten_instances_with_one_second_checks():
    names = [unique("wmload") for _ in range(10)]
    async with EmbeddedRegistry() as registry, health_target(*names) as target, watching(registry.config) as watch:
        regs = [registration(name, str(i), target.port) for name in names for i in range(10)]
        async with Registrar(registry.config, regs):
            changes = watch.changes()
            await next_view(changes, lambda v: all(len(v.get(n, ())) == 10 for n in names))
            await target.set(names[0], False)
            view = await next_view(changes, lambda v: names[0] not in v, timeout=15)
            assert all(len(view[n]) == 10 for n in names[1:])
            probes = registry.state.grpc_checks()
            assert len(probes) == 100


SERVE = (
    "import asyncio, logging, sys\n"
    "logging.basicConfig(level=logging.INFO, stream=sys.stdout)\n"
    "from workmesh.registry import run_embedded_registry\n"
    "asyncio.run(run_embedded_registry('127.0.0.1', {port}))\n"
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_embedded_registry_serves_until_a_signal_and_logs_its_address(procs, sig):
    port = free_port()
    proc = procs.start("-c", SERVE.format(port=port), name="registry")
    wait_for_port(port)
    eventually(lambda: f"127.0.0.1:{port}" in procs.log_of(proc))
    assert procs.stop(proc, sig) == 0, procs.log_of(proc)


async def test_unsupported_filter_expressions_are_refused_not_ignored():
    async with EmbeddedRegistry() as registry, api_for(registry.config) as api:
        status, reason, _ = await api.get("/v1/catalog/services", filter='"x" in ServiceTags')
        assert status == 400
        assert "filter" in reason


async def test_unsupported_check_types_are_refused_with_a_reason():
    async with EmbeddedRegistry() as registry, api_for(registry.config) as api:
        status, reason = await api.put(
            "/v1/agent/service/register", {"Name": "w", "Check": {"HTTP": "http://127.0.0.1:1/", "Interval": "1s"}}
        )
        assert status == 400
        assert "GRPC and TTL checks only" in reason


async def test_find_service_raises_unavailable_when_the_registry_is_down():
    from workmesh.services.core.errors import Unavailable

    config = RegistryConfig(address=f"127.0.0.1:{free_port()}")
    with pytest.raises(Unavailable, match=config.address):
        await find_service(config, "workmesh-results")


@pytest.mark.parametrize(
    ("path", "query", "named"),
    [
        ("/v1/health/service/x", {"peer": "other"}, "peer"),
        ("/v1/health/service/x", {"near": "_agent"}, "near"),
        ("/v1/catalog/service/x", {"node-meta": "a:b"}, "node-meta"),
        ("/v1/catalog/services", {"ns": "team"}, "ns"),
        ("/v1/health/checks/x", {"partition": "p"}, "partition"),
        ("/v1/agent/services", {"filter": "Service == x"}, "filter"),
        ("/v1/agent/checks", {"frobnicate": "1"}, "frobnicate"),
        ("/v1/status/leader", {"dc": "dc1"}, "dc"),
    ],
)
async def test_query_parameters_it_does_not_implement_are_refused_naming_them(path, query, named):
    async with EmbeddedRegistry() as registry, api_for(registry.config) as api:
        status, reason, _ = await api.get(path, **query)
        assert status == 400
        assert f"The {named} parameter is not supported" in reason


async def test_harmless_query_parameters_are_accepted():
    async with EmbeddedRegistry() as registry, api_for(registry.config) as api:
        for query in ({"stale": ""}, {"consistent": ""}, {"cached": ""}, {"token": "t"}, {"dc": "dc1"}):
            status, body, _ = await api.get("/v1/catalog/services", **query)
            assert status == 200, (query, body)
        async with api.session.get("/v1/agent/self", params={"pretty": ""}) as reply:
            assert reply.status == 200
            assert "\n    " in await reply.text()  # indented


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"Kind": "connect-proxy"}, "Kind"),
        ({"Proxy": {"DestinationServiceName": "web"}}, "Proxy"),
        ({"Connect": {"SidecarService": {}}}, "Connect"),
        ({"SocketPath": "/tmp/x.sock"}, "SocketPath"),
        ({"Namespace": "team"}, "Namespace"),
        ({"Locality": {"Region": "eu"}}, "Locality"),
        ({"Check": {"TTL": "5s", "SuccessBeforePassing": 2}}, "Check.SuccessBeforePassing"),
        # (TLSSkipVerify and TLSServerName are implemented: tests/tls/test_registry_tls.py.)
        (
            {"Check": {"GRPC": "127.0.0.1:1/x", "Interval": "1s", "FailuresBeforeCritical": 3}},
            "Check.FailuresBeforeCritical",
        ),
        ({"Checks": [{"TTL": "5s", "OutputMaxSize": 10}]}, "Checks[0].OutputMaxSize"),
    ],
)
async def test_documented_fields_it_does_not_implement_are_refused_not_dropped(extra, named):
    async with EmbeddedRegistry() as registry, api_for(registry.config) as api:
        status, reason = await api.put("/v1/agent/service/register", {"Name": "w", **extra})
        assert status == 400
        assert f"{named} is not supported by the embedded registry" in reason
        _, services, _ = await api.get("/v1/agent/services")
        assert services == {}


async def test_the_probe_loop_keeps_the_minimum_interval_whatever_it_is_given():
    # Past the decoder: a definition built in code with a 1 ns interval still probes at 1/s.
    async with EmbeddedRegistry() as registry, health_target("svc") as target:
        cdef = CheckDef(kind="grpc", grpc=f"127.0.0.1:{target.port}/svc", interval=1e-9)
        registry.state.register(ServiceDef(name="w", service_id="w-1", checks=(cdef,)))
        await eventually_async(_async(lambda: target.probes >= 1), timeout=10)
        before = target.probes
        await asyncio.sleep(2.0)  # an observation window
        assert target.probes - before <= 2.0 / MIN_INTERVAL + 2


async def test_a_nanosecond_ttl_does_not_keep_the_registry_busy():
    # The registry runs in this process and loop: an expiry timer that re-fires in a loop
    # would use about a CPU second per second here.
    async with EmbeddedRegistry() as registry, api_for(registry.config) as api:
        await api.register({"Name": "w", "ID": "w-1", "Check": {"TTL": 1}})
        assert (await api.put("/v1/agent/check/pass/service:w-1"))[0] == 200
        before = time.process_time()
        await asyncio.sleep(1.0)  # an observation window
        assert time.process_time() - before < 0.3
        assert await api.check_status("service:w-1") == "critical"
