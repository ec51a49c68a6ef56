"""The one advertise rule: the setting, else the listen host, never a wildcard."""

from __future__ import annotations

import pytest

from workmesh.services.core.net import advertise_host, join_host_port, split_host_port
from workmesh.services.gateway import GatewayConfig
from workmesh.services.results import ResultsConfig
from workmesh.workers import WorkerConfig


@pytest.mark.parametrize(
    ("listen", "advertise", "expected"),
    [
        ("10.1.2.3", None, "10.1.2.3"),
        ("0.0.0.0", None, "127.0.0.1"),
        ("::", "", "127.0.0.1"),
        ("[::]", "  ", "127.0.0.1"),
        ("", None, "127.0.0.1"),
        ("0.0.0.0", "gateway-1.example", "gateway-1.example"),
        ("127.0.0.1", " 10.0.0.7 ", "10.0.0.7"),
        ("0.0.0.0", "[fd00::7]", "fd00::7"),
    ],
)
def test_advertise_host(listen, advertise, expected):
    assert advertise_host(listen, advertise) == expected


def test_host_port():
    assert split_host_port("0.0.0.0:50051") == ("0.0.0.0", 50051)
    assert split_host_port("[::1]:7") == ("::1", 7)
    assert join_host_port("::1", 7) == "[::1]:7" and join_host_port("10.0.0.1", 7) == "10.0.0.1:7"
    for bad in ("nowhere", "host:", "host:http", "host:70000"):
        with pytest.raises(ValueError, match="must be host:port"):
            split_host_port(bad)


def test_every_service_uses_the_rule():
    env = {
        "WORKMESH_GATEWAY_ADDR": "0.0.0.0:50051",
        "WORKMESH_GATEWAY_ADVERTISE": "10.0.0.5",
        "WORKMESH_RESULTS_ADDR": "0.0.0.0:50052",
        "WORKMESH_RESULTS_ADVERTISE": "10.0.0.6",
        "WORKMESH_WORKER_HOST": "0.0.0.0",
        "WORKMESH_WORKER_ADVERTISE": "10.0.0.7",
    }
    assert GatewayConfig.from_env(env).advertise == "10.0.0.5"
    assert ResultsConfig.from_env(env).host == "10.0.0.6"
    assert WorkerConfig.from_env(env).advertise_host == "10.0.0.7"
    bare = {k: v for k, v in env.items() if "ADVERTISE" not in k}
    assert (ResultsConfig.from_env(bare).host, WorkerConfig.from_env(bare).advertise_host) == ("127.0.0.1",) * 2
