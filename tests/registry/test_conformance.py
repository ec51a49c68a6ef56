"""Conformance of the registry HTTP API workmesh uses, against every backend.

The same cases run against the embedded registry and a real Consul (skipped, with the reason,
when none is available), so the embedded registry keeps to Consul's documented semantics.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.registry.conftest import api_for, health_target, unique
from tests.support import eventually_async


async def test_register_list_and_deregister(backend):
    name = unique()
    async with backend.running() as config, api_for(config) as api:
        await api.register(
            {
                "Name": name,
                "ID": f"{name}-1",
                "Tags": ["wm", "v1"],
                "Address": "127.0.0.1",
                "Port": 4321,
                "Meta": {"workflow_type": "echo", "capacity": "3"},
            }
        )
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
        await api.register(
            {"Name": name, "ID": f"{name}-ok", "Tags": ["x", "y"], "Check": {"TTL": "30s", "Status": "passing"}}
        )
        await api.register({"Name": name, "ID": f"{name}-bad", "Tags": ["x"], "Check": {"TTL": "30s"}})
        await api.register(
            {"Name": name, "ID": f"{name}-warn", "Tags": ["x"], "Check": {"TTL": "30s", "Status": "warning"}}
        )
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
        await api.register(
            {
                "Name": name,
                "ID": f"{name}-1",
                "Port": target.port,
                "Address": "127.0.0.1",
                "Check": {"GRPC": f"127.0.0.1:{target.port}/svc", "Interval": "1s"},
            }
        )

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
    pytest.param(
        b'{"Name": "w", "Meta": {' + b",".join(b'"k%d": "v"' % i for i in range(65)) + b"}}", "Meta", id="meta-too-many"
    ),
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


# -- issue 9, defect 10: what Consul does with bad intervals, deep JSON, unknown datacenters ---------
async def test_a_nanosecond_grpc_interval_is_raised_to_the_minimum_not_honoured(backend):
    # A JSON number is nanoseconds: "Interval": 1 asks for a probe every nanosecond. Consul
    # accepts it and raises it to its 1 s minimum; probing as asked would spin a core.
    name = unique()
    check = f"service:{name}-1"
    async with backend.running() as config, api_for(config) as api, health_target("svc") as target:
        await api.register(
            {
                "Name": name,
                "ID": f"{name}-1",
                "Port": target.port,
                "Check": {"GRPC": f"127.0.0.1:{target.port}/svc", "Interval": 1},
            }
        )

        async def passing():
            return await api.check_status(check) == "passing"

        await eventually_async(passing, timeout=15, interval=0.1)
        before = target.probes
        window = 2.0
        await asyncio.sleep(window)  # an observation window, not a wait for a condition
        # At the 1 s minimum: about 2 probes in 2 s (load only makes it fewer), never thousands.
        assert target.probes - before <= window / 1.0 + 2


DEEP = 100_000


def _nested(depth: int, open_: bytes = b"[", close: bytes = b"]") -> bytes:
    return open_ * depth + close * depth


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(_nested(1000), id="array-1000"),
        pytest.param(_nested(10_000), id="array-10000"),
        pytest.param(_nested(DEEP), id="array-100000"),
        pytest.param(b'{"a":' * 1000 + b"1" + b"}" * 1000, id="object-1000"),
        pytest.param(b'{"Name": "w", "Meta": {"k": ' + _nested(DEEP) + b"}}", id="in-meta"),
        pytest.param(b'{"Name": "w", "Check": ' + b'{"TTL":' * 5000 + b'"1s"' + b"}" * 5001, id="in-check"),
    ],
)
async def test_deeply_nested_json_is_a_bad_request(backend, raw):
    async with backend.running() as config, api_for(config) as api:
        status, text = await api.put("/v1/agent/service/register", raw=raw)
        assert status == 400, text[:300]
        status, text = await api.put("/v1/agent/check/update/no-such-check", raw=raw)
        assert status == 400, text[:300]


@pytest.mark.parametrize("interval", [0, -1, "0s", "-1s"])
async def test_grpc_checks_need_a_positive_interval(backend, interval):
    async with backend.running() as config, api_for(config) as api:
        status, text = await api.put(
            "/v1/agent/service/register", {"Name": unique(), "Check": {"GRPC": "127.0.0.1:1/x", "Interval": interval}}
        )
        assert status == 400, text
        assert "Interval" in text or "check" in text.lower()


@pytest.mark.parametrize(
    "path",
    ["/v1/catalog/services", "/v1/catalog/service/{name}", "/v1/health/service/{name}", "/v1/health/checks/{name}"],
)
async def test_an_unknown_datacenter_has_no_path(backend, path):
    name = unique()
    async with backend.running() as config, api_for(config) as api:
        await api.register({"Name": name, "ID": f"{name}-1"})
        _, me, _ = await api.get("/v1/agent/self")
        own = me["Config"]["Datacenter"]
        status, body, _ = await api.get(path.format(name=name), dc=own)
        assert status == 200, body
        status, body, _ = await api.get(path.format(name=name), dc=f"{own}-elsewhere")
        assert status == 500
        assert "No path to datacenter" in body


# -- documented service fields are kept ------------------------------------------------------------
async def test_tagged_addresses_and_weights_are_stored_and_returned(backend):
    name = unique()
    tagged = {"lan": {"Address": "10.1.2.3", "Port": 4000}, "wan": {"Address": "198.51.100.7", "Port": 443}}
    async with backend.running() as config, api_for(config) as api:
        await api.register(
            {
                "Name": name,
                "ID": f"{name}-1",
                "Address": "127.0.0.1",
                "Port": 4321,
                "TaggedAddresses": tagged,
                "Weights": {"Passing": 7, "Warning": 2},
            }
        )
        _, services, _ = await api.get("/v1/agent/services")
        mine = services[f"{name}-1"]
        assert {k: mine["TaggedAddresses"][k] for k in tagged} == tagged
        # Consul adds the service address as lan_ipv4/wan_ipv4 unless given.
        assert mine["TaggedAddresses"]["lan_ipv4"] == {"Address": "127.0.0.1", "Port": 4321}
        assert mine["Weights"] == {"Passing": 7, "Warning": 2}
        _, (node,), _ = await api.get(f"/v1/catalog/service/{name}")
        assert {k: node["ServiceTaggedAddresses"][k] for k in tagged} == tagged
        assert node["ServiceWeights"] == {"Passing": 7, "Warning": 2}
        (entry,) = await api.health(name)
        assert {k: entry["Service"]["TaggedAddresses"][k] for k in tagged} == tagged
        assert entry["Service"]["Weights"] == {"Passing": 7, "Warning": 2}


@pytest.mark.parametrize(
    "weights", [{"Passing": 0, "Warning": 1}, {"Passing": 1, "Warning": -1}, {"Passing": 70000, "Warning": 1}]
)
async def test_invalid_weights_are_refused(backend, weights):
    async with backend.running() as config, api_for(config) as api:
        status, text = await api.put("/v1/agent/service/register", {"Name": unique(), "Weights": weights})
        assert status == 400
        assert "Weights" in text


# -- TTL checks expire at their deadline -------------------------------------------------------------
async def test_a_ttl_check_is_critical_as_soon_as_its_ttl_has_passed(backend):
    name = unique()
    check = f"service:{name}-1"
    ttl, margin = 0.5, 0.05
    loop = asyncio.get_running_loop()
    async with backend.running() as config, api_for(config) as api:
        await api.register({"Name": name, "ID": f"{name}-1", "Check": {"TTL": f"{ttl * 1000:g}ms"}})
        for _ in range(3):  # a registry that polls TTLs now and then is caught in one of these
            status, _ = await api.put(f"/v1/agent/check/pass/{check}")
            heartbeat_done = loop.time()  # the registry set the deadline before it answered
            assert status == 200
            assert await api.check_status(check) == "passing"
            await asyncio.sleep(heartbeat_done + ttl + margin - loop.time())
            # Now at least `margin` past the deadline: every read must show it expired.
            assert await api.check_status(check) == "critical"
            (entry,) = await api.health(name)
            assert [c["Status"] for c in entry["Checks"] if c["CheckID"] == check] == ["critical"]


# -- endpoints Consul tools use ----------------------------------------------------------------------
async def test_health_checks_of_a_service_with_blocking(backend):
    name = unique()
    async with backend.running() as config, api_for(config) as api:
        status, body, index = await api.get(f"/v1/health/checks/{name}")
        assert (status, body) == (200, [])
        assert index >= 1
        await api.register(
            {
                "Name": name,
                "ID": f"{name}-1",
                "Checks": [{"TTL": "30s", "CheckID": f"{name}-a"}, {"TTL": "30s", "CheckID": f"{name}-b"}],
            }
        )
        await api.register({"Name": name, "ID": f"{name}-2", "Check": {"TTL": "30s", "Status": "passing"}})
        status, checks, index = await api.get(f"/v1/health/checks/{name}")
        assert status == 200
        assert {(c["CheckID"], c["ServiceID"], c["Status"]) for c in checks} == {
            (f"{name}-a", f"{name}-1", "critical"),
            (f"{name}-b", f"{name}-1", "critical"),
            (f"service:{name}-2", f"{name}-2", "passing"),
        }
        assert all(c["ServiceName"] == name and c["Node"] for c in checks)
        blocked = asyncio.create_task(api.get(f"/v1/health/checks/{name}", index=index, wait="30s"))
        await asyncio.sleep(0.1)
        assert (await api.put(f"/v1/agent/check/pass/{name}-a"))[0] == 200
        status, checks, new_index = await asyncio.wait_for(blocked, 25)
        assert status == 200
        assert new_index > index
        assert {c["CheckID"]: c["Status"] for c in checks}[f"{name}-a"] == "passing"


async def test_status_peers_lists_the_leader(backend):
    async with backend.running() as config, api_for(config) as api:
        _, leader, _ = await api.get("/v1/status/leader")
        status, peers, _ = await api.get("/v1/status/peers")
        assert status == 200
        assert leader in peers


async def test_agent_self_has_a_parseable_version_and_the_leader_address(backend):
    async with backend.running() as config, api_for(config) as api:
        _, leader, _ = await api.get("/v1/status/leader")
        status, me, _ = await api.get("/v1/agent/self")
        assert status == 200
        assert re.match(r"^\d+\.\d+\.\d+$", me["Config"]["Version"]), me["Config"]["Version"]
        assert me["Stats"]["consul"]["leader_addr"] == leader


async def test_agent_check_register_ttl_heartbeats_and_deregister(backend):
    name = unique()
    check = f"{name}-ttl"
    async with backend.running() as config, api_for(config) as api:
        await api.register({"Name": name, "ID": f"{name}-1"})
        status, text = await api.register_check(
            {"Name": "heartbeat", "CheckID": check, "ServiceID": f"{name}-1", "TTL": "30s", "Notes": "n"}
        )
        assert status == 200, text
        _, checks, _ = await api.get("/v1/agent/checks")
        mine = checks[check]
        assert (mine["Status"], mine["ServiceID"], mine["ServiceName"], mine["Name"], mine["Notes"]) == (
            "critical",
            f"{name}-1",
            name,
            "heartbeat",
            "n",
        )
        assert await api.health(name, passing=1) == []
        assert (await api.put(f"/v1/agent/check/pass/{check}", params={"note": "ok"}))[0] == 200
        assert [e["Service"]["ID"] for e in await api.health(name, passing=1)] == [f"{name}-1"]
        assert (await api.put(f"/v1/agent/check/fail/{check}"))[0] == 200
        assert await api.check_status(check) == "critical"
        status, _ = await api.put(f"/v1/agent/check/update/{check}", {"Status": "warning", "Output": "hm"})
        assert status == 200
        _, checks, _ = await api.get("/v1/agent/checks")
        assert (checks[check]["Status"], checks[check]["Output"]) == ("warning", "hm")

        assert (await api.put(f"/v1/agent/check/deregister/{check}"))[0] == 200
        _, checks, _ = await api.get("/v1/agent/checks")
        assert check not in checks
        assert [e["Service"]["ID"] for e in await api.health(name, passing=1)] == [f"{name}-1"]


async def test_agent_check_register_checks_its_input(backend):
    name = unique()
    async with backend.running() as config, api_for(config) as api:
        status, text = await api.register_check({"CheckID": f"{name}-x", "TTL": "30s"})
        assert status == 400
        assert "name" in text.lower()
        status, text = await api.register_check(
            {"Name": "x", "CheckID": f"{name}-x", "TTL": "30s", "ServiceID": f"{name}-nobody"}
        )
        assert status == 404
        assert f"{name}-nobody" in text
        status, text = await api.register_check({"Name": "x", "CheckID": f"{name}-x", "TTL": "30s", "Status": "fine"})
        assert status == 400


async def test_a_node_check_counts_for_every_service_of_the_node(backend):
    name = unique()
    check = f"{name}-node"
    async with backend.running() as config, api_for(config) as api:
        await api.register({"Name": name, "ID": f"{name}-1", "Check": {"TTL": "30s", "Status": "passing"}})
        assert len(await api.health(name, passing=1)) == 1
        status, text = await api.register_check({"Name": "node health", "CheckID": check, "TTL": "30s"})
        assert status == 200, text
        try:
            _, checks, _ = await api.get("/v1/agent/checks")
            assert (checks[check]["ServiceID"], checks[check]["Status"]) == ("", "critical")
            assert await api.health(name, passing=1) == []
            (entry,) = await api.health(name)
            assert check in [c["CheckID"] for c in entry["Checks"]]
            # health/checks/<service> lists the service's own checks only.
            _, own, _ = await api.get(f"/v1/health/checks/{name}")
            assert [c["CheckID"] for c in own] == [f"service:{name}-1"]
        finally:
            assert (await api.put(f"/v1/agent/check/deregister/{check}"))[0] == 200
        assert len(await api.health(name, passing=1)) == 1
