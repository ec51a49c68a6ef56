"""Conformance of the registry HTTP API workmesh uses, against every backend.

The same cases run against the embedded registry and a real Consul (skipped, with the reason,
when none is available), so the embedded registry keeps to Consul's documented semantics.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.registry.conftest import api_for, health_target, unique
from tests.support import eventually_async


async def test_register_list_and_deregister(backend):
    name = unique()
    async with backend.running() as config, api_for(config) as api:
        await api.register({"Name": name, "ID": f"{name}-1", "Tags": ["wm", "v1"], "Address": "127.0.0.1",
                            "Port": 4321, "Meta": {"workflow_type": "echo", "capacity": "3"}})
        _, services, _ = await api.get("/v1/agent/services")
        mine = services[f"{name}-1"]
        assert (mine["Service"], mine["Port"], mine["Address"]) == (name, 4321, "127.0.0.1")
        assert sorted(mine["Tags"]) == ["v1", "wm"]
        assert mine["Meta"] == {"workflow_type": "echo", "capacity": "3"}

        status, catalog, index = await api.get("/v1/catalog/services")
        assert status == 200
        assert index >= 1
        assert sorted(catalog[name]) == ["v1", "wm"]
        _, nodes, _ = await api.get(f"/v1/catalog/service/{name}")
        assert [(n["ServiceID"], n["ServicePort"]) for n in nodes] == [(f"{name}-1", 4321)]

        (entry,) = await api.health(name)
        assert entry["Service"]["ID"] == f"{name}-1"
        assert entry["Node"]["Node"]
        assert any(c["CheckID"] == "serfHealth" and c["Status"] == "passing" for c in entry["Checks"])

        assert await api.deregister(f"{name}-1") == 200
        _, catalog, _ = await api.get("/v1/catalog/services")
        assert name not in catalog
        assert await api.health(name) == []
        assert await api.deregister(f"{name}-1") == 404


async def test_catalog_services_lists_the_union_of_instance_tags(backend):
    name = unique()
    async with backend.running() as config, api_for(config) as api:
        await api.register({"Name": name, "ID": f"{name}-1", "Tags": ["a", "shared"]})
        await api.register({"Name": name, "ID": f"{name}-2", "Tags": ["b", "shared"]})
        _, catalog, _ = await api.get("/v1/catalog/services")
        assert sorted(catalog[name]) == ["a", "b", "shared"]


async def test_health_passing_and_tag_filters(backend):
    name = unique()
    async with backend.running() as config, api_for(config) as api:
        await api.register({"Name": name, "ID": f"{name}-ok", "Tags": ["x", "y"],
                            "Check": {"TTL": "30s", "Status": "passing"}})
        await api.register({"Name": name, "ID": f"{name}-bad", "Tags": ["x"], "Check": {"TTL": "30s"}})
        await api.register({"Name": name, "ID": f"{name}-warn", "Tags": ["x"],
                            "Check": {"TTL": "30s", "Status": "warning"}})
        everyone = {e["Service"]["ID"] for e in await api.health(name)}
        assert everyone == {f"{name}-ok", f"{name}-bad", f"{name}-warn"}
        assert [e["Service"]["ID"] for e in await api.health(name, passing=1)] == [f"{name}-ok"]
        assert [e["Service"]["ID"] for e in await api.health(name, tag="y")] == [f"{name}-ok"]
        (entry,) = await api.health(name, passing=1)
        assert all(c["Status"] == "passing" for c in entry["Checks"])


async def test_ttl_check_heartbeats_and_expiry(backend):
    name = unique()
    check = f"service:{name}-1"
    async with backend.running() as config, api_for(config) as api:
        await api.register({"Name": name, "ID": f"{name}-1", "Check": {"TTL": "2s"}})
        assert await api.check_status(check) == "critical"
        assert (await api.put(f"/v1/agent/check/pass/{check}", params={"note": "alive"}))[0] == 200
        _, checks, _ = await api.get("/v1/agent/checks")
        assert (checks[check]["Status"], checks[check]["Output"]) == ("passing", "alive")
        assert (await api.put(f"/v1/agent/check/warn/{check}"))[0] == 200
        assert await api.check_status(check) == "warning"
        status, _ = await api.put(f"/v1/agent/check/update/{check}", {"Status": "passing", "Output": "ok"})
        assert status == 200
        assert await api.check_status(check) == "passing"

        async def expired():
            return await api.check_status(check) == "critical"
        await eventually_async(expired, timeout=15, interval=0.2)
        assert (await api.put(f"/v1/agent/check/fail/{check}"))[0] == 200
        assert (await api.put("/v1/agent/check/pass/no-such-check"))[0] == 404


async def test_grpc_check_follows_the_health_server(backend):
    name = unique()
    check = f"service:{name}-1"
    async with backend.running() as config, api_for(config) as api, health_target("svc") as target:
        await api.register({"Name": name, "ID": f"{name}-1", "Port": target.port, "Address": "127.0.0.1",
                            "Check": {"GRPC": f"127.0.0.1:{target.port}/svc", "Interval": "1s"}})

        async def status_is(wanted):
            async def check_it():
                return await api.check_status(check) == wanted
            await eventually_async(check_it, timeout=15, interval=0.1)

        await status_is("passing")  # first probe right after registration
        await target.set("svc", False)
        await status_is("critical")
        assert await api.health(name, passing=1) == []
        await target.set("svc", True)
        await status_is("passing")
        assert len(await api.health(name, passing=1)) == 1
        await target.stop()
        await status_is("critical")


async def test_blocking_query_returns_on_change_with_a_higher_index(backend):
    name = unique()
    async with backend.running() as config, api_for(config) as api:
        _, body, index = await api.get(f"/v1/health/service/{name}")
        assert body == []
        assert index >= 1
        blocked = asyncio.create_task(api.get(f"/v1/health/service/{name}", index=index, wait="30s"))
        # Give the query time to block first (the assertions hold either way: see below).
        await asyncio.sleep(0.1)
        await api.register({"Name": name, "ID": f"{name}-1"})
        status, body, new_index = await asyncio.wait_for(blocked, 25)
        # Only an answer produced after the write can contain it and carry a higher index.
        assert status == 200
        assert new_index > index
        assert [e["Service"]["ID"] for e in body] == [f"{name}-1"]


async def test_blocking_query_waits_without_change_and_keeps_its_index(backend):
    name = unique()
    async with backend.running() as config, api_for(config) as api:
        await api.register({"Name": name, "ID": f"{name}-1"})
        _, body, index = await api.get(f"/v1/health/service/{name}")
        status, again, same = await api.get(f"/v1/health/service/{name}", index=index, wait="1s")
        assert status == 200
        assert same == index
        assert again == body


async def test_catalog_services_blocking_query_wakes_on_new_service(backend):
    name = unique()
    async with backend.running() as config, api_for(config) as api:
        _, catalog, index = await api.get("/v1/catalog/services")
        assert name not in catalog
        blocked = asyncio.create_task(api.get("/v1/catalog/services", index=index, wait="30s"))
        await asyncio.sleep(0.1)
        await api.register({"Name": name, "ID": f"{name}-1", "Tags": ["wm"]})
        _, catalog, new_index = await asyncio.wait_for(blocked, 25)
        assert new_index > index
        assert catalog[name] == ["wm"]


async def test_bad_blocking_parameters_are_rejected(backend):
    async with backend.running() as config, api_for(config) as api:
        status, reason, _ = await api.get("/v1/catalog/services", index="abc")
        assert status == 400
        assert reason
        status, reason, _ = await api.get("/v1/catalog/services", index=1, wait="forever")
        assert status == 400
        assert reason


MALFORMED = [
    pytest.param(b"{not json", "decode", id="invalid-json"),
    pytest.param(b'{"ID": "x"}', "Missing service name", id="missing-name"),
    pytest.param(b'{"Name": "w", "Check": {"TTL": "often"}}', "invalid duration", id="bad-duration"),
    pytest.param(b'{"Name": "w", "Meta": {"a.b": "v"}}', "Meta", id="meta-key-chars"),
    pytest.param(b'{"Name": "w", "Meta": {"k": "' + b"v" * 513 + b'"}}', "Meta", id="meta-value-length"),
    pytest.param(b'{"Name": "w", "Meta": {"' + b"k" * 129 + b'": "v"}}', "Meta", id="meta-key-length"),
    pytest.param(b'{"Name": "w", "Meta": {' + b",".join(b'"k%d": "v"' % i for i in range(65)) + b"}}",
                 "Meta", id="meta-too-many"),
]


@pytest.mark.parametrize(("raw", "reason"), MALFORMED)
async def test_malformed_registrations_get_400_with_a_reason(backend, raw, reason):
    async with backend.running() as config, api_for(config) as api:
        status, text = await api.put("/v1/agent/service/register", raw=raw)
        assert status == 400
        assert text.strip()
        if backend.embedded:  # Consul's wording differs between versions; ours names the rule
            assert reason in text


async def test_leader_and_agent_self(backend):
    async with backend.running() as config, api_for(config) as api:
        status, leader, _ = await api.get("/v1/status/leader")
        assert status == 200
        assert leader
        status, me, _ = await api.get("/v1/agent/self")
        assert status == 200
        assert me["Config"]["NodeName"]
