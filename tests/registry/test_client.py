"""Registrar, ServiceWatch and find_service against every backend (embedded and real Consul)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest

from tests.registry.conftest import api_for, health_target, unique
from tests.support import eventually_async
from workmesh.registry import WORKFLOW_TAG, Registrar, RegistryConfig, ServiceRegistration, ServiceWatch, find_service


def registration(name: str, instance: str, port: int, *, tagged: bool = True, **meta: str) -> ServiceRegistration:
    return ServiceRegistration(
        name=name,
        service_id=f"{name}-{instance}",
        address="127.0.0.1",
        port=port,
        tags=(WORKFLOW_TAG,) if tagged else ("other",),
        meta={"workflow_type": name, "version": "1.0.0", "capacity": "2", **meta},
        grpc_check=f"127.0.0.1:{port}/{name}",
        check_interval="1s",
        deregister_critical_after="1m",
    )


async def next_view(changes, until: Callable[[dict], bool], timeout: float = 10.0) -> dict:
    """Consume `changes` until a view satisfies `until`; fail after `timeout` seconds."""

    async def consume():
        async for view in changes:
            if until(view):
                return view
        raise AssertionError("the watch stopped")

    return await asyncio.wait_for(consume(), timeout)


@contextlib.asynccontextmanager
async def watching(config: RegistryConfig, **kwargs):
    watch = ServiceWatch(config, **kwargs)
    await watch.start()
    try:
        yield watch
    finally:
        await watch.stop()


async def test_registrar_registers_with_a_passing_grpc_check_and_deregisters_on_stop(backend):
    name = unique("wmreg")
    async with backend.running() as config, api_for(config) as api, health_target(name) as target:
        reg = registration(name, "a", target.port)
        async with Registrar(config, [reg]) as registrar:
            assert registrar.registered == {reg.service_id}
            (entry,) = await api.health(name, passing=1)  # passing at once: registered as passing
            assert entry["Service"]["Meta"]["capacity"] == "2"
            check = next(c for c in entry["Checks"] if c["ServiceID"] == reg.service_id)
            assert check["Type"] == "grpc"
        _, services, _ = await api.get("/v1/agent/services")
        assert reg.service_id not in services


async def test_registrar_reregisters_when_the_agent_forgot(backend):
    name = unique("wmreg")
    async with backend.running() as config, api_for(config) as api, health_target(name) as target:
        reg = registration(name, "a", target.port)
        async with Registrar(config, [reg], resync_interval=0.2):
            assert await api.deregister(reg.service_id) == 200  # e.g. an agent restart lost it

            async def back():
                _, services, _ = await api.get("/v1/agent/services")
                return reg.service_id in services

            await eventually_async(back, timeout=10)


async def test_watch_follows_instances_appearing_failing_and_leaving(backend):
    name, other = unique("wmwatch"), unique("wmplain")
    async with backend.running() as config, health_target(name, other) as target, watching(config, wait="5s") as watch:
        initial = await asyncio.wait_for(watch.wait_synced(), 10)
        assert name not in initial
        changes = watch.changes()
        first = await anext(changes)  # the current view comes first
        assert first == watch.instances
        async with Registrar(
            config, [registration(name, "a", target.port), registration(other, "a", target.port, tagged=False)]
        ):
            view = await next_view(changes, lambda v: name in v)
            (inst,) = view[name]
            assert (inst.service_id, inst.port, inst.workflow_type) == (f"{name}-a", target.port, name)
            assert other not in view  # untagged services are not watched

            async with Registrar(config, [registration(name, "b", target.port)]):
                view = await next_view(changes, lambda v: len(v.get(name, ())) == 2)
                assert [i.service_id for i in view[name]] == [f"{name}-a", f"{name}-b"]
            view = await next_view(changes, lambda v: len(v.get(name, ())) == 1)
            assert [i.service_id for i in view[name]] == [f"{name}-a"]

            await target.set(name, False)  # the gRPC check fails -> critical -> not passing
            view = await next_view(changes, lambda v: name not in v, timeout=15)
            await target.set(name, True)
            await next_view(changes, lambda v: name in v, timeout=15)
        await next_view(changes, lambda v: name not in v)
        assert watch.connected


async def test_mark_unhealthy_hides_an_instance_until_the_registry_reports_news(backend):
    name = unique("wmhint")
    async with backend.running() as config, health_target(name) as target, watching(config, hint_ttl=60) as watch:
        changes = watch.changes()
        async with Registrar(config, [registration(name, "a", target.port), registration(name, "b", target.port)]):
            await next_view(changes, lambda v: len(v.get(name, ())) == 2)
            watch.mark_unhealthy(f"{name}-a")
            view = await next_view(changes, lambda v: len(v.get(name, ())) == 1)
            assert [i.service_id for i in view[name]] == [f"{name}-b"]
            # News about the service (a new instance) hands the decision back to the registry.
            async with Registrar(config, [registration(name, "c", target.port)]):
                view = await next_view(changes, lambda v: len(v.get(name, ())) == 3)
                assert {i.service_id for i in view[name]} == {f"{name}-a", f"{name}-b", f"{name}-c"}


async def test_mark_unhealthy_hint_expires(backend):
    name = unique("wmhint")
    async with backend.running() as config, health_target(name) as target, watching(config, hint_ttl=0.3) as watch:
        changes = watch.changes()
        async with Registrar(config, [registration(name, "a", target.port)]):
            await next_view(changes, lambda v: name in v)
            watch.mark_unhealthy(f"{name}-a")
            await next_view(changes, lambda v: name not in v)
            await next_view(changes, lambda v: name in v)


async def test_find_service_returns_passing_instances(backend):
    name = unique("wmfind")
    async with backend.running() as config, health_target(name) as target:
        assert await find_service(config, name) == []
        async with Registrar(config, [registration(name, "a", target.port)]):
            (inst,) = await find_service(config, name)
            assert (inst.service_id, inst.address, inst.port) == (f"{name}-a", "127.0.0.1", target.port)


async def test_registrar_start_raises_when_the_registry_rejects_a_registration(backend):
    name = unique("wmbad")
    reg = registration(name, "a", 1)
    # Bypass the client-side check to see what the registry itself says.
    object.__setattr__(reg, "meta", {"bad key": "v"})
    async with backend.running() as config:
        registrar = Registrar(config, [reg])
        with pytest.raises(ValueError, match="rejected a registration"):
            await registrar.start()
        await registrar.stop()


async def test_stopping_the_watch_ends_every_changes_iterator(backend):
    async with backend.running() as config:
        watch = ServiceWatch(config)
        await watch.start()
        await asyncio.wait_for(watch.wait_synced(), 10)

        async def consume():
            return [view async for view in watch.changes()]

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0)  # the consumer takes the current view and waits for the next
        await watch.stop()
        views = await asyncio.wait_for(consumer, 10)
        assert len(views) >= 1  # at least the current view, then the iterator ended
