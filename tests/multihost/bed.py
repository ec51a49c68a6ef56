"""The multi-host test bed: every workmesh service in a network namespace of its own.

Hosts (addresses in the :class:`~tests.multihost.netns.Network`'s subnet):

===========  =====  ==============================================================
host         octet  runs
===========  =====  ==============================================================
registry     10     ``workmesh registry`` (the embedded Consul-API registry)
postgres     11     PostgreSQL 15, listening on this host's address only
gw1, gw2     21/22  ``workmesh gateway``: two replicas on that PostgreSQL (gw1 listens on
                    0.0.0.0 and advertises its address, gw2 listens on its address)
results      30     ``workmesh results`` (Parquet)
w1, w2, w3   41–43  ``workmesh worker tests.multihost.flows:worker``
(client)     1      the test process itself, on the bridge
===========  =====  ==============================================================

Every service learns the registry from ``CONSUL_HTTP_ADDR`` and says where it can be reached
from its own configuration (``*_ADVERTISE`` with a wildcard listen address, or a listen address
that is the host's own); nothing can fall back to 127.0.0.1 unnoticed, because 127.0.0.1 is a
different machine in each namespace. Processes are started with ``ip netns exec`` (which execs
in place, so the pid is the service's) and stopped by pid.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

from tests.chaos.support import GATEWAY_ENV, Gateway
from tests.fixtures.postgres import PostgresServer
from tests.multihost.netns import Network
from tests.support import Processes, eventually, wait_for_port

HOSTS = {"registry": 10, "postgres": 11, "gw1": 21, "gw2": 22, "results": 30, "w1": 41, "w2": 42, "w3": 43}
WORKERS = ("w1", "w2", "w3")
GATEWAYS = ("gw1", "gw2")
REGISTRY_PORT, PG_PORT, GATEWAY_PORT, RESULTS_PORT, WORKER_PORT = 8500, 5432, 50051, 50052, 50061
FLOWS = "tests.multihost.flows:worker"
CAPACITY = 4
# Workers drain for real on SIGTERM (the drain test), but never wait long on teardown.
WORKER_ENV = {"WORKMESH_WORKER_DRAIN_GRACE": "20", "WORKMESH_WORKER_CANCEL_GRACE": "1"}
# The chaos tests' short leases, and a short store retry budget for the database partition.
BED_GATEWAY_ENV = {**GATEWAY_ENV, "WORKMESH_STORE_RETRY": "5"}


class Bed:
    """The started services of one test module, with helpers to look at the registry.

    Attributes:
        net: the network.
        gateways: gateway name → client (its channel goes to the gateway's own address).
        workers: worker name → its process.
    """

    def __init__(self, net: Network, procs: Processes, tmp: Path) -> None:
        self.net = net
        self.procs = procs
        self.tmp = tmp
        self.postgres: PostgresServer | None = None
        self.gateways: dict[str, Gateway] = {}
        self.workers: dict[str, subprocess.Popen] = {}
        self.registry_proc: subprocess.Popen | None = None
        self.results_proc: subprocess.Popen | None = None

    # -- addresses ------------------------------------------------------------------------------
    def ip(self, host: str) -> str:
        return self.net.address(host)

    @property
    def registry(self) -> str:
        return f"{self.ip('registry')}:{REGISTRY_PORT}"

    def _env(self, **extra: str) -> dict[str, str]:
        return {
            "CONSUL_HTTP_ADDR": self.registry,
            "WORKMESH_LOG_LEVEL": "INFO",
            "WORKMESH_LOG_FORMAT": "console",
            **extra,
        }

    # -- starting -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start every service and wait until each one serves on its own address."""
        self.registry_proc = self.procs.workmesh(
            "registry",
            "--host",
            self.ip("registry"),
            "--port",
            str(REGISTRY_PORT),
            env=self._env(),
            name="registry",
            wrap=self.net.wrap("registry"),
        )
        self.postgres = PostgresServer(
            host=self.ip("postgres"), port=PG_PORT, wrap=self.net.wrap("postgres"), trust=f"{self.net.subnet}.0/24"
        )
        self.postgres.start()
        self.postgres.admin('CREATE DATABASE "workmesh"')
        wait_for_port(REGISTRY_PORT, host=self.ip("registry"), timeout=30)
        self.results_proc = self.procs.workmesh(
            "results",
            env=self._env(
                WORKMESH_RESULTS_ADDR=f"0.0.0.0:{RESULTS_PORT}",
                WORKMESH_RESULTS_ADVERTISE=self.ip("results"),
                WORKMESH_DATA_DIR=str(self.tmp / "results"),
            ),
            name="results",
            wrap=self.net.wrap("results"),
        )
        for name in GATEWAYS:
            self.start_gateway(name, wait=False)
        for name in WORKERS:
            self.start_worker(name)
        wait_for_port(RESULTS_PORT, host=self.ip("results"), timeout=30)
        for name in GATEWAYS:
            wait_for_port(GATEWAY_PORT, host=self.ip(name), timeout=30)

    def start_gateway(self, name: str, wait: bool = True) -> Gateway:
        """Start (or restart) gateway replica `name` on its host."""
        assert self.postgres is not None
        env = self._env(
            **BED_GATEWAY_ENV,
            DATABASE_URL=self.postgres.url("workmesh"),
            WORKMESH_REPLICA_ID=name,
            WORKMESH_DATA_DIR=str(self.tmp / name),
            WORKMESH_GATEWAY_ADVERTISE=self.ip(name) if name == GATEWAYS[0] else "",
        )
        # gw1 listens on all interfaces and says where it is with WORKMESH_GATEWAY_ADVERTISE (as in a
        # container); gw2 listens on its host's address only, which is then what it registers.
        listen = "0.0.0.0" if name == GATEWAYS[0] else self.ip(name)
        proc = self.procs.workmesh(
            "gateway", "--listen", f"{listen}:{GATEWAY_PORT}", env=env, name=name, wrap=self.net.wrap(name)
        )
        old = self.gateways.pop(name, None)
        if old is not None:
            old.close()
        gateway = self.gateways[name] = Gateway(self, proc, GATEWAY_PORT, host=self.ip(name))
        if wait:
            wait_for_port(GATEWAY_PORT, host=self.ip(name), timeout=30)
        return gateway

    def start_worker(self, name: str) -> subprocess.Popen:
        """Start (or restart) worker `name`: listens on all interfaces, advertises its host's address."""
        env = self._env(**WORKER_ENV, WORKMESH_WORKER_INSTANCE_ID=name, WORKMESH_WORKER_ADVERTISE=self.ip(name))
        proc = self.procs.workmesh(
            "worker",
            FLOWS,
            "--listen",
            f"0.0.0.0:{WORKER_PORT}",
            "--capacity",
            str(CAPACITY),
            env=env,
            name=name,
            wrap=self.net.wrap(name),
        )
        self.workers[name] = proc
        return proc

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal one service by pid and wait for it (SIGKILL after `timeout`)."""
        return self.procs.stop(proc, sig, timeout=timeout)

    def close(self) -> None:
        """Stop every process by pid (workers first, PostgreSQL last)."""
        for gateway in self.gateways.values():
            gateway.close()
        for proc in self.workers.values():
            self.procs.stop(proc, signal.SIGKILL)
        self.procs.stop_all()
        if self.postgres is not None:
            with contextlib.suppress(Exception):
                self.postgres.destroy()

    # -- the registry's view --------------------------------------------------------------------
    def health(self, service: str) -> list[dict[str, Any]]:
        """``/v1/health/service/<service>`` from the registry (every instance, passing or not)."""
        with urllib.request.urlopen(f"http://{self.registry}/v1/health/service/{service}", timeout=5) as reply:
            return json.loads(reply.read())

    def check_status(self, service: str, instance: str) -> str:
        """The aggregated check status of one instance ("passing", "critical", or "absent")."""
        for entry in self.health(service):
            if entry["Service"]["ID"].endswith(f"-{instance}"):
                statuses = {c["Status"] for c in entry["Checks"]}
                return "critical" if "critical" in statuses else "passing" if statuses <= {"passing"} else "warning"
        return "absent"

    def wait_check(self, service: str, instance: str, status: str, timeout: float = 30) -> None:
        eventually(lambda: self.check_status(service, instance) == status, timeout=timeout, interval=0.1)

    def wait_ready(self, timeout: float = 60) -> None:
        """Until both gateways list the test types with every worker instance."""
        for gateway in self.gateways.values():
            gateway.wait_types("chaos-record", len(WORKERS), timeout=timeout)
            gateway.wait_types("series-async", len(WORKERS), timeout=timeout)

    def logs(self) -> str:
        """The tail of every process log (for failure messages)."""
        parts = []
        for proc in self.procs.started:
            with contextlib.suppress(OSError):
                text = Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]
                parts.append(f"--- {Path(proc.log_path).name} ---\n{text[-3000:]}")  # type: ignore[attr-defined]
        return "\n".join(parts)
