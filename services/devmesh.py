"""Start a whole mesh of real processes on one machine: registry, results, gateway, workers.

Used by ``workmesh dev``, ``workmesh demo``, the benchmarks when no mesh address is given, and
the end-to-end tests. Every process is a ``workmesh`` CLI subprocess of this Python; each is
stopped by its pid (SIGTERM, then SIGKILL after a grace period), never by name, and gets SIGTERM
from the kernel if this process dies first (:func:`~workmesh.services.core.children.die_with_parent`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import grpc

from workmesh.services.core.children import die_with_parent, spawn
from workmesh.v1 import gateway_pb2, gateway_pb2_grpc

EXAMPLE_WORKERS = (
    "workmesh.workers.examples.heat_demand:worker",
    "workmesh.workers.examples.basic:worker",
    "workmesh.workers.examples.district:worker",
)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60.0, host: str = "127.0.0.1") -> None:
    """Block until host:port accepts connections; fail early if `proc` exits.

    The default allows for a machine under load, where a server's start-up (its imports) has
    taken over 20 s; a server that dies is reported at once all the same.
    """
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        if proc.poll() is not None:
            args = proc.args if isinstance(proc.args, list) else [proc.args]
            command = args[args.index("-m") + 1 :] if "-m" in args else args  # after "python -m"
            raise RuntimeError(f"{' '.join(map(str, command))} exited with {proc.returncode} before listening")
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")
        time.sleep(0.02)


@dataclass
class MeshProcess:
    """One process of the mesh."""

    name: str
    popen: subprocess.Popen
    address: str = ""
    log_path: Path | None = None
    types: tuple[str, ...] = ()  # workflow types, for workers


@dataclass
class DevMesh:
    """A mesh of real processes on 127.0.0.1.

    Args:
        workers: worker targets (``module:attr``) to start, one process each.
        results: also start the results service (Parquet store under ``data_dir``).
        registry_port / gateway_port / results_port: fixed ports, or 0 for free ones.
        http_port: the gateway's HTTP API and console (0: a free port, None: no HTTP server).
        database_url: job store of the gateway (empty: the gateway's default).
        data_dir: where the job store and series live when no URL says otherwise.
        log_dir: write each process's output to a file there; None: inherit this terminal.
        env: extra environment for every process.
        token: bearer token the mesh itself calls the gateway with (waiting for the workers'
            types) when the gateway authenticates.
        ca_file: the CA the mesh itself verifies a TLS gateway with (waiting for the workers'
            types); empty: plaintext. The processes' own TLS comes from ``WORKMESH_TLS_*`` in `env`.
    """

    workers: Sequence[str] = EXAMPLE_WORKERS
    results: bool = True
    registry_port: int = 0
    gateway_port: int = 0
    results_port: int = 0
    http_port: int | None = 0
    database_url: str = ""
    data_dir: Path | None = None
    log_dir: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    token: str = field(default="", repr=False)
    ca_file: str = ""
    processes: list[MeshProcess] = field(default_factory=list, init=False)
    # Workflow types each started worker serves: what wait_for_types waits for.
    expected: Counter[str] = field(default_factory=Counter, init=False)

    @property
    def registry_address(self) -> str:
        return f"127.0.0.1:{self.registry_port}"

    @property
    def gateway_address(self) -> str:
        return f"127.0.0.1:{self.gateway_port}"

    @property
    def console_url(self) -> str:
        """The web console (and HTTP API) of the gateway; empty without one."""
        return f"http://127.0.0.1:{self.http_port}/" if self.http_port else ""

    @property
    def results_address(self) -> str:
        return f"127.0.0.1:{self.results_port}" if self.results else ""

    def base_env(self) -> dict[str, str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "CONSUL_HTTP_ADDR": self.registry_address, **self.env}
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        if self.data_dir is not None:
            env["WORKMESH_DATA_DIR"] = str(self.data_dir)
        return env

    def spawn(self, name: str, *args: str, env: Mapping[str, str] | None = None) -> MeshProcess:
        """Start ``workmesh ARGS`` as a child process and remember it for :meth:`stop`."""
        out: IO[bytes] | None = None
        log_path = None
        if self.log_dir is not None:
            log_path = self.log_dir / f"{name}-{len(self.processes)}.log"
            out = open(log_path, "wb")  # noqa: SIM115 - the child owns it from here
        popen = spawn(  # SIGTERMed by the kernel if this process dies: no mesh is left behind
            [*die_with_parent(signal.SIGTERM), sys.executable, "-m", "workmesh.services.cli", *args],
            env={**self.base_env(), **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=self.log_dir is not None,  # dev: Ctrl-C reaches children too
        )
        if out is not None:
            out.close()
        proc = MeshProcess(name, popen, log_path=log_path)
        self.processes.append(proc)
        return proc

    def start(self) -> DevMesh:
        """Start every process and wait until the gateway lists every worker's types."""
        try:
            self.registry_port = self.serve(
                "registry", self.registry_port, lambda port: ("registry", "--host", "127.0.0.1", "--port", str(port))
            )
            if self.results:
                self.results_port = self.serve(
                    "results", self.results_port, lambda port: ("results", "--listen", f"127.0.0.1:{port}")
                )
            if self.http_port == 0:
                self.http_port = free_port()
            http = f"127.0.0.1:{self.http_port}" if self.http_port else "off"
            self.gateway_port = self.serve(
                "gateway", self.gateway_port, lambda port: ("gateway", "--listen", f"127.0.0.1:{port}", "--http", http)
            )
            if self.http_port:
                wait_for_port(self.http_port, self.processes[-1].popen)
            for target in self.workers:
                self.add_worker(target)
            self.wait_for_types()
        except BaseException:
            self.stop()
            raise
        return self

    def serve(self, name: str, port: int, args: Callable[[int], Sequence[str]], tries: int = 3) -> int:
        """Start a server on `port` (0: a free one) and wait until it listens; return the port.

        A free port can be taken by another process between our probe and the server's bind;
        with port 0 the server is then started again on another free port.
        """
        for attempt in range(1, tries + 1):
            chosen = port or free_port()
            proc = self.spawn(name, *args(chosen))
            try:
                wait_for_port(chosen, proc.popen)
            except RuntimeError:
                if port or attempt == tries:
                    raise
                self.processes.remove(proc)
                continue
            proc.address = f"127.0.0.1:{chosen}"
            return chosen
        raise AssertionError("unreachable")

    def add_worker(self, target: str, *extra: str, port: int = 0, env: Mapping[str, str] | None = None) -> MeshProcess:
        """Start one more worker process (``workmesh worker TARGET``); port 0 picks a free one."""
        # Lazy on purpose: the CLI imports this module at start-up (`workmesh dev`, `demo`), and the
        # worker SDK costs about 1.5 s to import; only adding a worker needs it.
        from workmesh.workers import load_worker

        proc = self.spawn("worker", "worker", target, "--listen", f"127.0.0.1:{port}", *extra, env=env)
        proc.types = tuple(load_worker(target).definitions)
        self.expected.update(proc.types)
        if port:
            proc.address = f"127.0.0.1:{port}"
        return proc

    def wait_for_types(self, timeout: float = 60.0) -> None:
        """Wait until the gateway lists, for every type, as many healthy instances as were started."""
        if not self.expected:
            return
        deadline = time.monotonic() + timeout
        metadata = (("authorization", f"Bearer {self.token}"),) if self.token else None
        with self.channel() as channel:
            stub = gateway_pb2_grpc.GatewayStub(channel)
            while True:
                for proc in self.processes:
                    if proc.popen.poll() is not None:
                        raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}")
                with contextlib.suppress(grpc.RpcError):
                    types = stub.ListWorkflowTypes(
                        gateway_pb2.ListWorkflowTypesRequest(), timeout=2, metadata=metadata
                    ).types
                    healthy = {t.type.name: t.healthy_instances for t in types}
                    if all(healthy.get(name, 0) >= n for name, n in self.expected.items()):
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the gateway did not list the workers' types within {timeout}s")
                time.sleep(0.05)

    def channel(self) -> grpc.Channel:
        """A blocking channel to the gateway: TLS verified against `ca_file` when set."""
        if self.ca_file:
            credentials = grpc.ssl_channel_credentials(Path(self.ca_file).read_bytes())
            return grpc.secure_channel(self.gateway_address, credentials)
        return grpc.insecure_channel(self.gateway_address)

    def stop(self, grace: float = 20.0) -> None:
        """Stop every process, newest first: SIGTERM, then SIGKILL after `grace` seconds."""
        for proc in reversed(self.processes):
            terminate(proc.popen, grace)
        self.processes.clear()
        self.expected.clear()

    def stop_one(self, proc: MeshProcess, grace: float = 20.0) -> int | None:
        """Stop one process of the mesh (SIGTERM, then SIGKILL) and forget it."""
        code = terminate(proc.popen, grace)
        self.processes.remove(proc)
        self.expected.subtract(proc.types)
        self.expected = +self.expected  # drop types no started worker serves any more
        return code

    def __enter__(self) -> DevMesh:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def describe(self) -> Iterable[str]:
        """One line per running process: name, address, pid."""
        for proc in self.processes:
            yield f"{proc.name:<9} {proc.address or '-':<22} pid {proc.popen.pid}"


def terminate(popen: subprocess.Popen, grace: float = 20.0) -> int | None:
    """SIGTERM the process by pid and wait; SIGKILL it if it outlives `grace` seconds."""
    if popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                popen.kill()
            popen.wait(5)
    return popen.returncode
