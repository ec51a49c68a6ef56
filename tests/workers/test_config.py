"""WorkerConfig: environment, overrides, validation."""

from __future__ import annotations

import pytest

from workmesh.workers import WorkerConfig


def test_defaults_and_env():
    config = WorkerConfig.from_env({})
    assert (config.host, config.port, config.capacity, config.register, config.drain_grace) == (
        "127.0.0.1",
        0,
        None,
        True,
        30.0,
    )
    assert config.instance_id.count("-") >= 2
    env = {
        "WORKMESH_WORKER_HOST": "0.0.0.0",
        "WORKMESH_WORKER_PORT": "50061",
        "WORKMESH_WORKER_CAPACITY": "8",
        "WORKMESH_WORKER_REGISTER": "no",
        "WORKMESH_WORKER_DRAIN_GRACE": "2.5",
        "WORKMESH_WORKER_INSTANCE_ID": "w1",
        "WORKMESH_WORKER_ORPHAN_TIMEOUT": "60",
        "WORKMESH_WORKER_CANCEL_GRACE": "1",
    }
    config = WorkerConfig.from_env(env, capacity=3)
    assert (config.host, config.port, config.capacity, config.register, config.drain_grace, config.instance_id) == (
        "0.0.0.0",
        50061,
        3,
        False,
        2.5,
        "w1",
    )
    assert (config.orphan_timeout, config.cancel_grace) == (60.0, 1.0)
    assert config.advertise_host == "127.0.0.1"  # all interfaces: advertise loopback unless told
    assert config.with_(advertise="10.0.0.5").advertise_host == "10.0.0.5"


def test_listen_and_capacity_helpers():
    config = WorkerConfig().with_listen("127.0.0.1:0").with_capacity(5)
    assert (config.host, config.port, config.capacity) == ("127.0.0.1", 0, 5)
    assert WorkerConfig().with_listen("[::1]:7000").host == "::1"
    with pytest.raises(ValueError, match="host:port"):
        WorkerConfig().with_listen("nowhere")


@pytest.mark.parametrize(
    "env, fragment",
    [
        ({"WORKMESH_WORKER_PORT": "http"}, "WORKMESH_WORKER_PORT='http': must be an integer between 0 and 65535"),
        ({"WORKMESH_WORKER_PORT": "70000"}, "WORKMESH_WORKER_PORT='70000': must be an integer between 0 and 65535"),
        ({"WORKMESH_WORKER_CAPACITY": "0"}, "WORKMESH_WORKER_CAPACITY='0': must be an integer, at least 1"),
        ({"WORKMESH_WORKER_DRAIN_GRACE": "-1"}, "WORKMESH_WORKER_DRAIN_GRACE='-1': must be a duration"),
        ({"WORKMESH_WORKER_DRAIN_GRACE": "soon"}, "WORKMESH_WORKER_DRAIN_GRACE='soon': must be a duration"),
        ({"WORKMESH_WORKER_REGISTER": "maybe"}, "WORKMESH_WORKER_REGISTER='maybe': must be 1/true/yes/on"),
    ],
)
def test_bad_env_is_named(env, fragment):
    with pytest.raises(ValueError) as info:
        WorkerConfig.from_env(env)
    assert fragment in str(info.value)
