"""The multi-host test bed (``bed``): built once for tests/multihost, removed at the end, also on failure."""

from __future__ import annotations

import pytest

from tests.fixtures.postgres import skip_reason as postgres_skip_reason
from tests.multihost import netns
from tests.multihost.bed import HOSTS, Bed
from tests.support import processes


@pytest.fixture(scope="package")
def bed(tmp_path_factory):
    """Registry, PostgreSQL, two gateways, results and three workers, each in its own namespace.

    Skips with the reason where namespaces, iptables or PostgreSQL are not available. Teardown
    stops every process by pid, deletes the namespaces, veths, bridge and route, and fails the
    last test of the package if anything of ours is left behind.
    """
    reason = netns.skip_reason() or postgres_skip_reason()
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("multihost")
    net = netns.Network(HOSTS)
    net.create()
    try:
        with processes(tmp) as procs:
            started = Bed(net, procs, tmp)
            try:
                started.start()
                started.wait_ready()
                yield started
            finally:
                started.close()
    finally:
        net.destroy()
    left = netns.leftovers(net.tag, net.subnet)
    assert not left, f"the test bed left these behind: {left}"
