"""``workmesh bench``: dispatch throughput/latency, progress events, discovery latency, series ingest/read.

Each benchmark runs against a mesh it starts itself on free loopback ports (or, for dispatch,
against a running gateway given with ``--gateway``) and prints its figures; ``--json`` prints
them as one JSON object. Benchmarks measure; they assert nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import grpc

from workmesh.registry import RegistryConfig, service_name
from workmesh.services.bench._dispatch import bench_dispatch
from workmesh.services.bench._estimate import bench_estimate
from workmesh.services.bench._fairness import bench_fairness, scheduler_cost
from workmesh.services.bench._http import bench_http
from workmesh.services.bench._jobs_page import bench_jobs_page
from workmesh.services.bench._progress import bench_progress
from workmesh.services.bench._secure import secure_mesh
from workmesh.services.bench._series import bench_series
from workmesh.services.bench._series_compare import bench_small_batches
from workmesh.services.bench._steps import bench_steps
from workmesh.services.devmesh import DevMesh
from workmesh.v1 import gateway_pb2, gateway_pb2_grpc

BASIC = "workmesh.workers.examples.basic:worker"
PROGRESS = "workmesh.workers.examples.loadgen:progress_worker"
DISCOVERY_PROBE = "workmesh.workers.examples.kpi:worker"


def run(args) -> int:
    runner = {
        "dispatch": dispatch,
        "progress": progress,
        "discovery": discovery,
        "series": series,
        "http": http,
        "fairness": fairness,
        "estimate": estimate,
        "steps": steps,
        "jobs-page": jobs_page,
    }[args.bench]
    figures = runner(args)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        _print(figures)
    return 0


def _print(figures: dict, indent: str = "") -> None:
    width = max(map(len, figures))
    for key, value in figures.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            _print(value, indent + "  ")
            continue
        shown = f"{value:,.3f}" if isinstance(value, float) else str(value)
        print(f"{indent}{key:<{width}}  {shown}")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def fairness(args) -> dict:
    return bench_fairness(args.job_seconds)


def steps(args) -> dict:
    """Workflow steps: per-step overhead in sequence and in parallel, re-execution of a done parent."""
    with tempfile.TemporaryDirectory(prefix="workmesh-bench-") as tmp:
        url = store_url(args.store, args.database_url, Path(tmp))
        load = _load()
        figures = bench_steps(url, Path(tmp), runs=args.runs, steps=args.steps)
    return {
        "store": args.store,
        "steps": args.steps,
        "load_average_before": load,
        "load_average_after": _load(),
        **figures,
    }


def jobs_page(args) -> dict:
    """The console's Jobs page requests with ``--jobs`` jobs in the store (services/bench/_jobs_page.py)."""
    with tempfile.TemporaryDirectory(prefix="workmesh-bench-") as tmp:
        url = store_url(args.store, args.database_url, Path(tmp))
        if url == "memory://":
            raise SystemExit("--store memory: the jobs are seeded into a SQL store the gateway then opens")
        return {"store": args.store, **bench_jobs_page(url, Path(tmp), jobs=args.jobs, repeats=args.repeats)}


def estimate(args) -> dict:
    return bench_estimate(runs=args.runs, history=args.history)


def store_url(store: str, database_url: str, data_dir: Path) -> str:
    """The gateway's DATABASE_URL for a benchmark's ``--store`` choice."""
    if store == "memory":
        return "memory://"
    if store == "sqlite":
        return f"sqlite:///{data_dir / 'bench-jobs.db'}"
    if not database_url.startswith("postgres"):
        raise SystemExit(
            "--store postgres needs --database-url postgresql://... (or DATABASE_URL); for a "
            "throwaway server run `python -m tests.fixtures.postgres` and pass the URL it prints"
        )
    return database_url


def dispatch(args) -> dict:
    """One store, or with ``--store all`` each of memory, SQLite and (given a URL) PostgreSQL in
    turn, each on a fresh mesh; the load average is printed with every figure."""
    if args.gateway:
        figures = asyncio.run(bench_dispatch(args.gateway, args.jobs, args.concurrency))
        return {"gateway": args.gateway, "load_average": _load(), **figures}
    if args.scheduler == "both":
        return _dispatch_policies(args)
    if args.auth_tls == "both":
        return _dispatch_auth_tls(args)
    if args.store != "all":
        return {"store": args.store, **_dispatch_on(args.store, args)}
    stores = ["memory", "sqlite"] + (["postgres"] if args.database_url.startswith("postgres") else [])
    return {store: _dispatch_on(store, args) for store in stores}


def _dispatch_policies(args) -> dict:
    """FIFO, then fair share, on fresh meshes in one run; the ratio; the scheduler's own cost."""
    out: dict = {"store": args.store}
    for policy in ("fifo", "fair"):
        out[policy] = _dispatch_on(args.store, args, policy)
    for path in ("unary", "stream"):
        out[f"{path}_burst_fair_vs_fifo"] = round(
            out["fair"][f"{path}_burst_jobs_per_s"] / out["fifo"][f"{path}_burst_jobs_per_s"], 3
        )
    out["scheduler_cost"] = scheduler_cost()
    return out


def _dispatch_auth_tls(args) -> dict:
    """Authentication and TLS off, then on, on fresh meshes in one run; the ratio per path."""
    out: dict = {"store": args.store}
    for mode in ("off", "on"):
        out[f"auth_tls_{mode}"] = _dispatch_on(args.store, args, secure=mode == "on")
    for path in ("unary", "stream"):
        on, off = out["auth_tls_on"][f"{path}_burst_jobs_per_s"], out["auth_tls_off"][f"{path}_burst_jobs_per_s"]
        out[f"{path}_burst_on_vs_off"] = round(on / off, 3)
    return out


def _dispatch_on(store: str, args, policy: str = "", secure: bool | None = None) -> dict:
    secure = args.auth_tls == "on" if secure is None else secure
    with tempfile.TemporaryDirectory(prefix="workmesh-bench-") as tmp:
        url = store_url(store, args.database_url, Path(tmp))
        figures: dict = {"load_average": _load()}
        if store == "postgres":
            # What "p50 in commit round trips" is measured against, on the same server now.
            figures["commit_p50_ms"] = commit_round_trip(url)
        env = {"WORKMESH_SCHEDULER": policy or args.scheduler}
        token = ca_file = ""
        if secure:
            settings = secure_mesh(Path(tmp))
            env.update(settings.env)
            token, ca_file = settings.token, settings.ca_file
        with DevMesh(
            workers=(BASIC,),
            results=False,
            database_url=url,
            data_dir=Path(tmp),
            log_dir=Path(tmp),
            env=env,
            token=token,
            ca_file=ca_file,
        ) as mesh:
            figures.update(
                asyncio.run(
                    bench_dispatch(mesh.gateway_address, args.jobs, args.concurrency, ca_file=ca_file, token=token)
                )
            )
        if store == "postgres":
            for path in ("unary", "unary_batch", "stream"):
                figures[f"{path}_p50_commits"] = round(figures[f"{path}_p50_ms"] / figures["commit_p50_ms"], 2)
        figures["load_average_after"] = _load()
    return figures


def commit_round_trip(url: str, rounds: int = 200) -> float:
    """p50 in ms of one INSERT + COMMIT on PostgreSQL at `url` (a table of its own, dropped after)."""
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    table = f"workmesh_bench_commit_{os.getpid()}"
    times = []
    with psycopg.connect(conninfo) as conn:
        conn.execute(f"CREATE TABLE {table} (n integer)")
        conn.commit()
        try:
            for n in range(rounds):
                start = time.perf_counter()
                conn.execute(f"INSERT INTO {table} VALUES (%s)", (n,))
                conn.commit()
                times.append(time.perf_counter() - start)
        finally:
            conn.execute(f"DROP TABLE {table}")
            conn.commit()
    return round(statistics.median(times) * 1000, 3)


def progress(args) -> dict:
    """One job's progress stream at full speed, then lag under fan-out, on a fresh mesh."""
    with tempfile.TemporaryDirectory(prefix="workmesh-bench-") as tmp:
        url = store_url(args.store, args.database_url, Path(tmp))
        with DevMesh(
            workers=(PROGRESS,), results=False, database_url=url, data_dir=Path(tmp), log_dir=Path(tmp)
        ) as mesh:
            gateway = next(p.popen.pid for p in mesh.processes if p.name.startswith("gateway"))
            worker = next(p.popen.pid for p in mesh.processes if p.name.startswith("worker"))
            figures = {"store": args.store, "fanout_batch": not args.unbatched, "load_average": _load()}
            figures.update(
                asyncio.run(
                    bench_progress(
                        mesh.gateway_address,
                        events=args.events,
                        jobs=args.jobs,
                        watchers=args.watchers,
                        rate=args.rate,
                        seconds=args.seconds,
                        rss=lambda: _rss(gateway),
                        cpu=lambda: _cpu(gateway),
                        batch=not args.unbatched,
                        worker_cpu=lambda: _cpu(worker),
                    )
                )
            )
            figures["load_average_after"] = _load()
    return figures


def _cpu(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def http(args) -> dict:
    """The HTTP API's job path (POST + SSE) against gRPC unary, then many SSE watchers."""
    with (
        tempfile.TemporaryDirectory(prefix="workmesh-bench-") as tmp,
        DevMesh(
            workers=(BASIC,), results=False, database_url="memory://", data_dir=Path(tmp), log_dir=Path(tmp)
        ) as mesh,
    ):
        pid = next(p.popen.pid for p in mesh.processes if p.name == "gateway")
        figures = asyncio.run(
            bench_http(
                mesh.console_url,
                mesh.gateway_address,
                pid,
                jobs=args.jobs,
                concurrency=args.concurrency,
                watchers=args.watchers,
                watched_jobs=args.watched_jobs,
                watch_seconds=args.watch_seconds,
            )
        )
    return {"store": "memory", "load_average": _load(), **figures}


def discovery(args) -> dict:
    """Start and stop a worker of a new type `--rounds` times; time until the gateway lists it.

    Two figures per round: from the registry first listing the instance as passing to the
    gateway's WatchWorkflowTypes stream announcing the type (the gateway's own discovery delay),
    and from the worker process being spawned (includes Python start-up and registration).
    """
    registered, announced, spawned = [], [], []
    with (
        tempfile.TemporaryDirectory(prefix="workmesh-bench-") as tmp,
        DevMesh(workers=(), results=False, data_dir=Path(tmp), log_dir=Path(tmp)) as mesh,
    ):
        registry = RegistryConfig(address=mesh.registry_address)
        with grpc.insecure_channel(mesh.gateway_address) as channel:
            stub = gateway_pb2_grpc.GatewayStub(channel)
            for _ in range(args.rounds):
                stream = stub.WatchWorkflowTypes(gateway_pb2.WatchWorkflowTypesRequest())
                added = threading.Event()
                threading.Thread(target=_wait_added, args=(stream, "kpi-peak-ratio", added), daemon=True).start()
                start = time.perf_counter()
                proc = mesh.add_worker(DISCOVERY_PROBE)
                first_passing = _wait_passing(registry, service_name("kpi-peak-ratio"))
                added.wait(30)
                done = added.time  # type: ignore[attr-defined]
                registered.append(first_passing - start)
                announced.append(done - first_passing)
                spawned.append(done - start)
                stream.cancel()
                mesh.stop_one(proc)
                mesh_types_gone(stub, "kpi-peak-ratio")
    ms = lambda xs: round(statistics.median(xs) * 1000, 1)  # noqa: E731
    return {
        "rounds": args.rounds,
        "registry_to_gateway_p50_ms": ms(announced),
        "registry_to_gateway_max_ms": round(max(announced) * 1000, 1),
        "spawn_to_registered_p50_ms": ms(registered),
        "spawn_to_gateway_p50_ms": ms(spawned),
    }


def _wait_added(stream, name: str, event: threading.Event) -> None:
    try:
        for change in stream:
            if change.kind == gateway_pb2.WorkflowTypeChange.KIND_ADDED and change.type.type.name == name:
                event.time = time.perf_counter()  # type: ignore[attr-defined]
                event.set()
                return
    except grpc.RpcError:
        return


def _wait_passing(config, name: str, timeout: float = 30.0) -> float:
    """Poll the registry's health endpoint (tightly: this is the reference clock) until `name` passes."""
    deadline = time.monotonic() + timeout
    url = f"http://{config.address}/v1/health/service/{name}?passing=1"
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url, timeout=5) as reply:
            if json.loads(reply.read()):
                return time.perf_counter()
        time.sleep(0.002)
    raise TimeoutError(f"{name} never became passing")


def mesh_types_gone(stub, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        types = stub.ListWorkflowTypes(gateway_pb2.ListWorkflowTypesRequest(), timeout=5).types
        if name not in {t.type.name for t in types}:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{name} still listed {timeout}s after its worker stopped")


def series(args) -> dict:
    if args.variations < 1 or args.small_batches < 0 or args.reads < 1:
        raise SystemExit("--variations and --reads must be at least 1 and --small-batches not negative")
    if args.small_batches:
        return asyncio.run(bench_small_batches(args.small_batches, components=args.components, steps=args.steps))
    return asyncio.run(
        bench_series(
            args.store,
            components=args.components,
            fields=args.fields,
            steps=args.steps,
            influx_url=args.influx_url,
            variations=args.variations,
            reads=args.reads,
            local_reads=getattr(args, "local_reads", "on") == "on",
        )
    )
