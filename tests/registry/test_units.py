"""Unit tests (no I/O) of the client-side pieces: durations, config, registrations, indexes."""

from __future__ import annotations

import pytest

from workmesh.registry import WORKFLOW_TAG, Instance, RegistryConfig, ServiceRegistration, service_name
from workmesh.registry.client._consul import Backoff, next_index
from workmesh.services.core.durations import parse_go_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("250ms", 0.25),
        ("1m30s", 90.0),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        ("0", 0.0),
        ("10us", 1e-5),
        (2_000_000_000, 2.0),
    ],
)
def test_parse_go_duration_accepts_go_durations(text, seconds):
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "s", "1x", "1s2", "abc", "1 s", "1d", "PT1S", True, None])
def test_parse_go_duration_rejects_garbage_naming_it(text):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_go_duration(text)


def test_config_defaults_match_consul():
    config = RegistryConfig.from_env({})
    assert (config.address, config.token, config.scheme) == ("127.0.0.1:8500", None, "http")
    assert config.url == "http://127.0.0.1:8500"


@pytest.mark.parametrize(
    ("env", "address", "scheme"),
    [
        ({"CONSUL_HTTP_ADDR": "10.0.0.5:8501"}, "10.0.0.5:8501", "http"),
        ({"CONSUL_HTTP_ADDR": "http://consul:8500"}, "consul:8500", "http"),
        ({"CONSUL_HTTP_ADDR": "https://consul:8501/"}, "consul:8501", "https"),
        ({"CONSUL_HTTP_ADDR": "consul:8501", "CONSUL_HTTP_SSL": "true"}, "consul:8501", "https"),
    ],
)
def test_config_reads_consul_env_vars(env, address, scheme):
    config = RegistryConfig.from_env({**env, "CONSUL_HTTP_TOKEN": "secret"})
    assert (config.address, config.scheme, config.token) == (address, scheme, "secret")
    assert (config.host, config.port) == (address.split(":")[0], int(address.split(":")[1]))


@pytest.mark.parametrize("bad", ["consul", "consul:http", "ftp://consul:1", ":8500"])
def test_config_rejects_bad_address_naming_the_variable(bad):
    with pytest.raises(ValueError, match="CONSUL_HTTP_ADDR"):
        RegistryConfig.from_env({"CONSUL_HTTP_ADDR": bad})


def test_service_name_convention():
    assert service_name("heat-demand") == "workmesh-wf-heat-demand"
    assert WORKFLOW_TAG == "workmesh-workflow"


def _registration(**overrides):
    fields = dict(
        name=service_name("echo"),
        service_id="workmesh-wf-echo-a1",
        address="127.0.0.1",
        port=50051,
        tags=(WORKFLOW_TAG,),
        meta={"workflow_type": "echo", "capacity": "4"},
        grpc_check="127.0.0.1:50051/echo",
    )
    return ServiceRegistration(**{**fields, **overrides})


def test_registration_payload_follows_the_conventions():
    body = _registration().payload()
    assert body["Name"] == "workmesh-wf-echo"
    assert body["ID"] == "workmesh-wf-echo-a1"
    assert body["Tags"] == ["workmesh-workflow"]
    assert body["Meta"]["capacity"] == "4"
    assert body["Check"] == {
        "Name": "gRPC health of workmesh-wf-echo-a1",
        "GRPC": "127.0.0.1:50051/echo",
        "Interval": "1s",
        "Status": "passing",
        "DeregisterCriticalServiceAfter": "1m",
    }
    assert "Check" not in _registration(grpc_check=None).payload()


def test_registration_is_immutable_and_hashable():
    reg = _registration()
    with pytest.raises(TypeError):
        reg.meta["x"] = "y"  # type: ignore[index]
    assert hash(reg) == hash(_registration())


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"meta": {f"k{i}": "v" for i in range(65)}}, "meta: at most 64"),
        ({"meta": {"bad key": "v"}}, "meta: key 'bad key': only letters"),
        ({"meta": {"k" * 129: "v"}}, "meta: key .*longer than 128"),
        ({"meta": {"k": "v" * 513}}, "meta: key 'k': value longer than 512"),
        ({"meta": {"consul-x": "v"}}, "reserved"),
        ({"port": 70000}, "port: must be 0..65535"),
        ({"name": ""}, "name: must not be empty"),
        ({"check_interval": "soon"}, "check_interval: invalid duration"),
        ({"deregister_critical_after": "0s"}, "deregister_critical_after: must be > 0"),
    ],
)
def test_registration_rejects_bad_fields_naming_field_and_rule(overrides, match):
    with pytest.raises(ValueError, match=match):
        _registration(**overrides)


def test_meta_at_the_limits_is_accepted():
    meta = {f"k{i}": "v" * 512 for i in range(63)} | {"k" * 128: "x"}
    assert len(_registration(meta=meta).meta) == 64


def test_next_index_resets_when_it_goes_backwards_and_never_blocks_below_one():
    assert next_index(0, 17) == 17
    assert next_index(17, 17) == 17
    assert next_index(17, 25) == 25
    assert next_index(25, 3) == 0  # went backwards (registry restarted): non-blocking read next
    assert next_index(0, 0) == 1


def test_backoff_grows_to_its_limit_and_resets():
    backoff = Backoff(first=0.1, limit=0.4)
    delays = [backoff.delay() for _ in range(5)]
    assert delays[0] <= 0.12
    assert all(d <= 0.48 for d in delays)
    assert delays[-1] >= 0.32
    backoff.reset()
    assert backoff.delay() <= 0.12


def test_instance_from_health_entry_falls_back_to_node_address():
    entry = {
        "Node": {"Node": "n1", "Address": "10.1.2.3"},
        "Service": {
            "ID": "svc-1",
            "Service": "svc",
            "Tags": ["a"],
            "Address": "",
            "Port": 7,
            "Meta": {"workflow_type": "echo"},
        },
    }
    inst = Instance.from_health_entry(entry)
    assert (inst.address, inst.port, inst.tags, inst.workflow_type) == ("10.1.2.3", 7, ("a",), "echo")
    assert inst.target == "10.1.2.3:7"
    entry["Service"]["Address"] = "127.0.0.1"
    assert Instance.from_health_entry(entry).address == "127.0.0.1"
