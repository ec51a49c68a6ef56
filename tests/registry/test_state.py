"""Unit tests (no I/O) of the embedded registry's state machine and request decoding."""

from __future__ import annotations

import json

import pytest

from workmesh.registry.embedded._decode import (
    BadRequest,
    decode_check_registration,
    decode_check_update,
    decode_service,
)
from workmesh.registry.embedded._state import CRITICAL, PASSING, WARNING, RegistryState


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def body(**fields) -> bytes:
    return json.dumps(fields).encode()


def svc(name="web", sid=None, tags=("t",), **extra):
    return decode_service(body(**{"Name": name, "ID": sid or f"{name}-1", "Tags": list(tags), "Port": 80, **extra}))


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def state(clock):
    return RegistryState(clock=clock)


def test_register_takes_an_index_and_lists_the_service(state):
    start = state.index
    assert state.register(svc())
    assert state.index == start + 1
    assert state.services_index() == state.name_index("web") == state.index
    assert state.catalog_services() == {"web": ["t"]}
    assert state.agent_services()["web-1"]["Service"] == "web"


def test_identical_reregistration_changes_nothing(state):
    state.register(svc())
    index = state.index
    assert not state.register(svc())
    assert state.index == index


def test_deregister_keeps_a_tombstone_index_so_indexes_never_go_back(state):
    state.register(svc())
    registered = state.name_index("web")
    assert state.deregister("web-1")
    assert state.name_index("web") > registered
    assert state.catalog_services() == {}
    assert not state.deregister("web-1")


def test_catalog_tags_are_the_union_of_instances(state):
    state.register(svc(sid="web-1", tags=("a", "shared")))
    state.register(svc(sid="web-2", tags=("b", "shared")))
    assert state.catalog_services() == {"web": ["a", "b", "shared"]}


def test_check_ids_follow_consuls_naming(state):
    state.register(svc(sid="one", Check={"TTL": "5s"}))
    state.register(svc(sid="two", Checks=[{"TTL": "5s"}, {"TTL": "5s", "CheckID": "mine"}]))
    assert set(state.checks) == {"service:one", "service:two:1", "mine"}
    assert state.checks["service:one"].name == "Service 'web' check"


def test_checks_start_critical_unless_a_status_is_given(state):
    state.register(svc(sid="a", Check={"TTL": "5s"}))
    state.register(svc(sid="b", Check={"TTL": "5s", "Status": "passing"}))
    assert state.checks["service:a"].status == CRITICAL
    assert state.checks["service:b"].status == PASSING
    passing = state.health_service("web", passing=True)
    assert [e["Service"]["ID"] for e in passing] == ["b"]
    assert len(state.health_service("web")) == 2


def test_health_entries_look_like_consuls(state):
    state.register(svc(Check={"TTL": "5s", "Status": "passing"}, Meta={"k": "v"}, Address="10.0.0.9"))
    (entry,) = state.health_service("web")
    assert entry["Node"]["Node"] == state.node_name
    assert entry["Node"]["Address"] == "127.0.0.1"
    assert {k: entry["Service"][k] for k in ("ID", "Service", "Tags", "Address", "Port", "Meta")} == {
        "ID": "web-1",
        "Service": "web",
        "Tags": ["t"],
        "Address": "10.0.0.9",
        "Port": 80,
        "Meta": {"k": "v"},
    }
    serf, own = entry["Checks"]
    assert (serf["CheckID"], serf["Status"]) == ("serfHealth", PASSING)
    assert (own["CheckID"], own["ServiceID"], own["Type"]) == ("service:web-1", "web-1", "ttl")


def test_tag_filter_needs_every_tag(state):
    state.register(svc(sid="a", tags=("x", "y")))
    state.register(svc(sid="b", tags=("x",)))
    assert [e["Service"]["ID"] for e in state.health_service("web", tags=["x", "y"])] == ["a"]
    assert [e["ServiceID"] for e in state.catalog_service("web", ["x"])] == ["a", "b"]


def test_check_results_take_an_index_only_when_they_change(state):
    state.register(svc(Check={"TTL": "5s"}))
    catalog = state.services_index()
    before = state.name_index("web")
    assert state.set_check("service:web-1", PASSING, "ok")
    assert state.name_index("web") > before
    assert state.services_index() == catalog  # health flaps do not wake catalog watchers
    index = state.index
    assert not state.set_check("service:web-1", PASSING, "ok")
    assert state.index == index


def test_ttl_heartbeats_and_expiry(state, clock):
    state.register(svc(Check={"TTL": "2s"}))
    state.update_ttl("service:web-1", PASSING, "alive")
    clock.now += 1.5
    assert state.expire_ttls() == []
    state.update_ttl("service:web-1", WARNING, "slow")  # a heartbeat re-arms the TTL
    clock.now += 1.5
    assert state.expire_ttls() == []
    clock.now += 1.0
    assert state.expire_ttls() == ["service:web-1"]
    check = state.checks["service:web-1"]
    assert (check.status, check.output) == (CRITICAL, "TTL expired")


def test_ttl_update_of_unknown_or_non_ttl_check_fails(state):
    state.register(svc(Check={"GRPC": "127.0.0.1:1/x", "Interval": "1s"}))
    with pytest.raises(KeyError):
        state.update_ttl("nope", PASSING, "")
    with pytest.raises(ValueError, match="TTL"):
        state.update_ttl("service:web-1", PASSING, "")


def test_reaper_removes_services_critical_longer_than_their_limit(state, clock):
    state.register(svc(sid="a", Check={"TTL": "1s", "DeregisterCriticalServiceAfter": "3s"}))
    state.register(svc(sid="b", Check={"TTL": "1s"}))  # no limit: never reaped
    clock.now += 2.9
    assert state.reap() == []
    state.update_ttl("service:a", PASSING, "")  # back to passing resets the critical clock
    clock.now += 2.0
    state.expire_ttls()
    assert state.checks["service:a"].status == CRITICAL
    clock.now += 2.9
    assert state.reap() == []
    clock.now += 0.2
    assert state.reap() == ["a"]
    assert set(state.services) == {"b"}
    assert set(state.checks) == {"service:b"}


def test_reregistration_keeps_check_status_and_missing_checks_unless_replaced(state):
    state.register(svc(Checks=[{"TTL": "5s", "CheckID": "c1"}, {"TTL": "5s", "CheckID": "c2"}]))
    state.update_ttl("c1", PASSING, "")
    state.register(svc(Check={"TTL": "5s", "CheckID": "c1"}, Port=81))
    assert state.checks["c1"].status == PASSING
    assert "c2" in state.checks
    state.register(svc(Check={"TTL": "5s", "CheckID": "c1"}, Port=82), replace_existing_checks=True)
    assert set(state.checks) == {"c1"}


def test_listeners_run_after_each_effective_write(state):
    calls = []
    state.add_listener(lambda: calls.append(set(state.checks)))
    state.register(svc(Check={"TTL": "5s"}))
    assert calls == [{"service:web-1"}]  # the listener sees the finished write
    state.register(svc(Check={"TTL": "5s"}))
    assert len(calls) == 1


# -- decoding ------------------------------------------------------------------------------------
def test_decoding_is_case_insensitive_and_accepts_snake_case():
    sdef = decode_service(
        body(
            name="web",
            id="w1",
            tags=["a"],
            port=8,
            meta={"Key": "v"},
            checks=[{"grpc": "h:1/s", "interval": "1s", "deregister_critical_service_after": "90s"}],
        )
    )
    assert (sdef.name, sdef.service_id, sdef.meta) == ("web", "w1", {"Key": "v"})
    (check,) = sdef.checks
    assert (check.kind, check.grpc, check.interval, check.deregister_after) == ("grpc", "h:1/s", 1.0, 90.0)


def test_service_id_defaults_to_the_name():
    assert decode_service(body(Name="web")).service_id == "web"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "Request decode failed"),
        (b"[1, 2]", "body must be a JSON object"),
        (body(ID="x"), "Missing service name"),
        (body(Name="w", Port="80"), "Port must be an integer"),
        (body(Name="w", Tags="a"), "Tags must be a list of strings"),
        (body(Name="w", Meta={f"k{i}": "v" for i in range(65)}), "Invalid Service Meta: at most 64"),
        (body(Name="w", Meta={"a.b": "v"}), "Invalid Service Meta: key 'a.b'"),
        (body(Name="w", Meta={"k": "v" * 513}), "Invalid Service Meta: key 'k': value longer than 512"),
        (body(Name="w", Meta={"k": 1}), "value must be a string"),
        (body(Name="w", Check={"GRPC": "h:1", "Interval": "often"}), 'Check.Interval: invalid duration "often"'),
        (body(Name="w", Check={"GRPC": "h:1"}), "Interval must be > 0 for GRPC checks"),
        (body(Name="w", Check={"TTL": "0s"}), "TTL must be > 0"),
        (body(Name="w", Check={"TTL": "5s", "Status": "fine"}), "Status must be one of"),
        (body(Name="w", Checks=[{"HTTP": "http://x", "Interval": "1s"}]), "GRPC and TTL checks only"),
        (
            body(Name="w", Check={"TTL": "1s", "DeregisterCriticalServiceAfter": "1 minute"}),
            "DeregisterCriticalServiceAfter: invalid duration",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"Name": "w", "Check": {"TTL": 1' + b"0" * 400 + b"}}", "TTL: int too large"),
        (b'{"Name": "w", "Check": {"TTL": NaN}}', "out of range"),
        (b'{"Name": "w", "Check": {"TTL": Infinity}}', "out of range"),
        (body(Name="w", Check={"TTL": "9" * 400 + "h"}), "out of range"),
        (body(Name="w", Check={"GRPC": "h:1", "Interval": 2**64}), "out of range"),
        (body(Name="w", Address="0.0.0.0"), "Invalid service address"),
        (body(Name="w", TaggedAddresses={"lan": "10.0.0.1"}), r"TaggedAddresses\['lan'\] must be an object"),
        (body(Name="w", TaggedAddresses={"lan": {"Address": "a", "Port": 70000}}), "Port must be an integer"),
        (body(Name="w", Weights={"Passing": 0}), "Passing must be greater than 0"),
        (body(Name="w", Weights={"Passing": "1"}), "must be integers"),
        (body(Name="w", Kind="mesh-gateway"), "Kind is not supported"),
    ],
)
def test_malformed_registrations_are_rejected_with_a_reason(raw, reason):
    with pytest.raises(BadRequest, match=reason):
        decode_service(raw)


def test_check_update_body():
    assert decode_check_update(body(Status="warning", Output="hm")) == (WARNING, "hm")
    with pytest.raises(BadRequest, match="Invalid check status"):
        decode_check_update(body(Status="meh"))


def test_tagged_addresses_get_consuls_defaults_from_an_ip_address():
    assert svc(Address="10.0.0.9").tagged_addresses == {"lan_ipv4": ("10.0.0.9", 80), "wan_ipv4": ("10.0.0.9", 80)}
    assert svc(Address="::1", TaggedAddresses={"lan_ipv6": {"address": "::2", "port": 1}}).tagged_addresses == {
        "lan_ipv6": ("::2", 1),
        "wan_ipv6": ("::1", 80),
    }
    assert svc(Address="host.example").tagged_addresses == {}


def test_check_registration_defaults_its_id_to_the_name_and_checks_its_input():
    cdef, service_id = decode_check_registration(body(Name="beat", TTL="5s", ServiceID="web-1"))
    assert (cdef.check_id, cdef.kind, service_id) == ("beat", "ttl", "web-1")
    with pytest.raises(BadRequest, match="Missing check name"):
        decode_check_registration(body(TTL="5s"))
    with pytest.raises(BadRequest, match="Bad check status"):
        decode_check_registration(body(Name="x", TTL="5s", Status="fine"))


def test_a_node_check_gates_every_service_and_wakes_every_name(state):
    state.register(svc(name="a", Check={"TTL": "5s", "Status": "passing"}))
    state.register(svc(name="b"))
    before = (state.name_index("a"), state.name_index("b"))
    node_check, _ = decode_check_registration(body(Name="disk", TTL="5s"))
    state.register_check(node_check)
    assert (state.name_index("a"), state.name_index("b")) > before
    assert state.health_service("a", passing=True) == []
    assert "disk" in [c["CheckID"] for c in state.health_service("a")[0]["Checks"]]
    assert [c["CheckID"] for c in state.health_checks("a")] == ["service:a-1"]
    state.update_ttl("disk", PASSING, "")
    assert len(state.health_service("a", passing=True)) == 1
    assert state.deregister_check("disk")
    assert not state.deregister_check("disk")


def test_a_check_registered_on_a_service_goes_with_it(state, clock):
    state.register(svc())
    cdef, _ = decode_check_registration(body(Name="beat", TTL="5s", DeregisterCriticalServiceAfter="1s"))
    with pytest.raises(KeyError):
        state.register_check(cdef, "nobody")
    state.register_check(cdef, "web-1")
    assert state.checks["beat"].service_name == "web"
    assert state.next_ttl_deadline() == clock.now + 5
    clock.now += 10
    state.expire_ttls()
    assert state.reap() == ["web-1"]
    assert state.checks == {}
    assert state.next_ttl_deadline() is None


def test_a_check_id_taken_over_by_another_service_leaves_the_first(state):
    # Found by the fuzz suite: the first service kept listing the id, and re-registering it
    # failed with a KeyError (HTTP 500).
    state.register(svc(sid="a", Check={"TTL": "5s", "CheckID": "shared"}))
    state.register(svc(sid="b", Check={"TTL": "5s", "CheckID": "shared", "Status": "passing"}))
    assert state.checks["shared"].service_id == "b"
    assert state.services["a"].check_ids == []
    assert state.register(svc(sid="a", Port=81))
    assert [c["CheckID"] for c in state.health_checks("web")] == ["shared"]
    assert state.deregister("a")
    assert "shared" in state.checks


def test_one_check_id_twice_in_a_registration_is_one_check(state):
    state.register(svc(Checks=[{"TTL": "5s", "CheckID": "c"}, {"TTL": "9s", "CheckID": "c"}]))
    assert state.services["web-1"].check_ids == ["c"]
    assert state.checks["c"].definition.ttl == 9


def test_a_ttl_expires_once_per_heartbeat(state, clock):
    # Found by the fuzz suite: the expiry re-armed the TTL, so a 1 ns TTL expired again and
    # again in a busy loop once the expiry ran on a timer.
    state.register(svc(Check={"TTL": 1}))  # a JSON number: 1 ns
    clock.now += 1
    assert state.expire_ttls() == ["service:web-1"]
    assert state.next_ttl_deadline() is None
    state.update_ttl("service:web-1", PASSING, "")
    assert state.next_ttl_deadline() == clock.now + 1e-9
    clock.now += 1
    assert state.expire_ttls() == ["service:web-1"]
    assert state.next_ttl_deadline() is None
