#!/usr/bin/env python3
"""Celery + RabbitMQ dispatch bench: the reference stack of issue 10, measured as `workmesh bench dispatch`.

Not part of workmesh and not a dependency of it: run with any Python 3.11+. Without Celery importable,
it makes a scratch venv (``--venv``, default ``/tmp/workmesh-celery-venv``), installs the pinned
``requirements.txt`` beside it there and runs itself again under that venv.

One run starts, on free loopback ports and in a temporary directory of its own:
``epmd`` (Erlang's port mapper, on a port of its own), Debian's ``rabbitmq-server`` (its own node
name, mnesia, logs, config and plugins files), then one Celery worker per ``--worker`` in turn. It
measures a no-op task (``acks_late``, persistent delivery, ``rpc://`` results) the way
`workmesh bench dispatch` measures its no-op ``echo`` jobs: ``--warmup`` untimed round trips, a
burst of ``--jobs`` jobs with ``--concurrency`` in flight, then ``--jobs`` sequential round trips
(submit, wait for the result), timed from sending to the result. It stops everything it started by
pid (process group of each), also on failure or SIGTERM, and prints the figures (``--json``: one
JSON object, a key per worker setting, ``celery_`` figures inside like the ``unary_`` / ``stream_``
ones of `workmesh bench dispatch --json`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    from celery import Celery
except ImportError:  # the bootstrap below installs it into a scratch venv
    Celery = None

HERE = Path(__file__).resolve().parent
TASK = "bench.noop"
REPLY = "ok"
DEFAULT_VENV = "/tmp/workmesh-celery-venv"
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # not /usr/sbin's wrapper: that one su's to rabbitmq


def _configure(app, broker: str, prefetch: int, durable: bool) -> None:
    """The settings of issue 10: acks_late, persistent task messages, rpc:// results (JSON)."""
    app.conf.update(
        broker_url=broker,
        result_backend="rpc://",
        task_acks_late=True,
        task_default_delivery_mode="persistent",
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=prefetch,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    if durable:
        # Closer to workmesh's guarantee (a job is acknowledged once stored): the broker confirms
        # each published task after it is on disk, and results are persistent messages too.
        app.conf.update(broker_transport_options={"confirm_publish": True}, result_persistent=True)


if Celery is not None:
    # The worker loads this module as `-A celery_bench`; its settings come from the environment.
    app = Celery("workmesh_celery_bench")
    _configure(
        app,
        os.environ.get("CELERY_BENCH_BROKER", "amqp://guest:guest@127.0.0.1:5672//"),
        int(os.environ.get("CELERY_BENCH_PREFETCH", "4")),
        os.environ.get("CELERY_BENCH_DURABLE") == "1",
    )

    @app.task(name=TASK)
    def noop() -> str:
        return REPLY


# --- processes we start, and stop by pid -------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(cmd: list[str], log: Path, env: dict, cwd: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM the process, wait `grace` s, then SIGKILL its process group (its session: ours)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # children left over (erl_child_setup, prefork children)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Broker:
    """epmd + rabbitmq-server on loopback, everything under `tmp`."""

    def __init__(self, tmp: Path, server: str) -> None:
        self.tmp, self.server = tmp, server
        self.port, self.dist, self.epmd_port = _free_port(), _free_port(), _free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        self.procs: list[tuple[subprocess.Popen, float]] = []
        self.log = tmp / "rabbitmq.out"
        self.version = ""

    def start(self, timeout: float) -> None:
        for sub in ("mnesia", "log", "home"):
            (self.tmp / sub).mkdir()
        (self.tmp / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq's
        (self.tmp / "rabbitmq.conf").write_text("")
        (self.tmp / "enabled_plugins").write_text("[].\n")
        env = dict(
            os.environ,
            HOME=str(self.tmp / "home"),  # the Erlang cookie goes here, not into root's home
            ERL_EPMD_PORT=str(self.epmd_port),
            RABBITMQ_NODENAME=f"wmbench{os.getpid()}@localhost",
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
            RABBITMQ_MNESIA_BASE=str(self.tmp / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.tmp / "log"),
            RABBITMQ_CONF_ENV_FILE=str(self.tmp / "rabbitmq-env.conf"),
            RABBITMQ_CONFIG_FILE=str(self.tmp / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.tmp / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.tmp / "enabled_plugins"),
            RABBITMQ_PID_FILE=str(self.tmp / "rabbitmq.pid"),
        )
        # Our own epmd (foreground, loopback): erl would otherwise leave a daemon on port 4369 behind.
        epmd = shutil.which("epmd") or "/usr/bin/epmd"
        cmd = [epmd, "-port", str(self.epmd_port), "-address", "127.0.0.1"]
        self.procs.append((_start(cmd, self.tmp / "epmd.out", env, self.tmp), 5.0))
        self.procs.append((_start([self.server], self.log, env, self.tmp), 60.0))
        self._wait(timeout)

    def _wait(self, timeout: float) -> None:
        from kombu import Connection

        server = self.procs[-1][0]
        deadline = time.monotonic() + timeout
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited {server.returncode}:\n{_tail(self.log)}")
            try:
                with Connection(self.url, connect_timeout=2) as conn:
                    conn.connect()
                    self.version = conn.connection.server_properties.get("version", "")
                    if isinstance(self.version, bytes):
                        self.version = self.version.decode()
                    return
            except Exception as exc:
                if time.monotonic() > deadline:
                    message = f"rabbitmq-server not accepting AMQP after {timeout}s:\n{_tail(self.log)}"
                    raise RuntimeError(message) from exc
                time.sleep(0.5)

    def stop(self) -> None:
        for proc, grace in reversed(self.procs):
            _stop(proc, grace)
        self.procs.clear()


def _start_worker(tmp: Path, broker: Broker, pool: str, concurrency: int, prefetch: int, durable: bool):
    name = f"{pool}{concurrency}"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        CELERY_BENCH_BROKER=broker.url,
        CELERY_BENCH_PREFETCH=str(prefetch),
        CELERY_BENCH_DURABLE="1" if durable else "0",
    )
    cmd = [sys.executable, "-m", "celery", "-A", "celery_bench", "worker", "--pool", pool]
    cmd += ["--concurrency", str(concurrency), "--prefetch-multiplier", str(prefetch)]
    cmd += ["--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"]
    cmd += ["--hostname", f"{name}-{os.getpid()}@localhost"]
    log = tmp / f"worker-{name}.out"
    return _start(cmd, log, env, tmp), log


# --- the measurement, as services/bench/_dispatch.py ------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def _round_trip(timeout: float) -> tuple[float, bool]:
    start = time.perf_counter()
    result = noop.apply_async()
    value = result.get(timeout=timeout)
    return time.perf_counter() - start, value == REPLY and result.state == "SUCCESS"


def _wait_ready(worker: subprocess.Popen, log: Path, timeout: float) -> None:
    """The first task's result: the worker is consuming (the task waits in the queue until then)."""
    result = noop.apply_async()
    deadline = time.monotonic() + timeout
    while True:
        if worker.poll() is not None:
            raise RuntimeError(f"celery worker exited {worker.returncode}:\n{_tail(log)}")
        try:
            result.get(timeout=1)
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no result from the celery worker after {timeout}s:\n{_tail(log)}") from exc


def _burst(jobs: int, concurrency: int, timeout: float) -> tuple[float, int]:
    """`jobs` tasks with `concurrency` in flight: a new one is sent as each result arrives."""
    consumer = app.backend.result_consumer
    pending: dict[str, object] = {}
    state = {"done": 0, "failed": 0}

    def ready(result) -> None:
        pending.pop(result.id, None)
        state["done"] += 1
        if result.state != "SUCCESS" or result.result != REPLY:
            state["failed"] += 1

    sent = 0
    start = time.perf_counter()
    while state["done"] < jobs:
        while len(pending) < concurrency and sent < jobs:
            result = noop.apply_async()
            pending[result.id] = result
            sent += 1
            result.then(ready)
        consumer.drain_events(timeout=timeout)  # socket.timeout if no result came for `timeout` s
    return time.perf_counter() - start, state["failed"]


def measure(jobs: int, concurrency: int, warmup: int, timeout: float) -> dict:
    for _ in range(warmup):
        _round_trip(timeout)
    burst, failed = _burst(jobs, concurrency, timeout)
    trips = [_round_trip(timeout) for _ in range(jobs)]
    failed += sum(not ok for _, ok in trips)
    latencies = sorted(t for t, _ in trips)
    return {
        "celery_burst_seconds": round(burst, 4),
        "celery_burst_jobs_per_s": round(jobs / burst, 1),
        "celery_sequential_jobs_per_s": round(jobs / sum(latencies), 1),
        "celery_p50_ms": round(percentile(latencies, 0.50) * 1000, 3),
        "celery_p90_ms": round(percentile(latencies, 0.90) * 1000, 3),
        "celery_p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
        "celery_mean_ms": round(statistics.fmean(latencies) * 1000, 3),
        "celery_max_ms": round(latencies[-1] * 1000, 3),
        "celery_failed": failed,
    }


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _setting(text: str, prefetch: int) -> tuple[str, int, int]:
    """``POOL[:CONCURRENCY[:PREFETCH_MULTIPLIER]]`` of --worker."""
    pool, _, rest = text.partition(":")
    count, _, multiplier = rest.partition(":")
    if pool not in ("prefork", "threads", "solo"):
        raise SystemExit(f"--worker {text}: the pool must be prefork, threads or solo")
    return pool, int(count or 1), int(multiplier or prefetch)


def run(args) -> dict:
    import celery
    import kombu

    out: dict = {}
    tmp = Path(tempfile.mkdtemp(prefix="workmesh-celery-bench-"))
    broker = Broker(tmp, args.rabbitmq_server)
    try:
        broker.start(args.start_timeout)
        _configure(app, broker.url, args.prefetch, args.durable)
        for setting in args.worker:
            pool, concurrency, prefetch = _setting(setting, args.prefetch)
            figures: dict = {
                "load_average": _load(),
                "jobs": args.jobs,
                "concurrency": args.concurrency,
                "pool": pool,
                "worker_concurrency": concurrency,
                "prefetch_multiplier": prefetch,
                "durable": args.durable,
                "celery_version": celery.__version__,
                "kombu_version": kombu.__version__,
                "rabbitmq_version": broker.version,
            }
            worker, log = _start_worker(tmp, broker, pool, concurrency, prefetch, args.durable)
            try:
                _wait_ready(worker, log, args.start_timeout)
                figures.update(measure(args.jobs, args.concurrency, args.warmup, args.timeout))
            finally:
                _stop(worker, 30.0)
            figures["load_average_after"] = _load()
            name = f"celery_{pool}{concurrency}_prefetch{prefetch}"
            out[name if name not in out else f"{name}_{len(out) + 1}"] = figures  # a setting given twice
    except BaseException:
        print(f"celery_bench: failed; logs in {tmp}", file=sys.stderr)
        args.keep = True
        raise
    finally:
        with contextlib.suppress(Exception):
            app.close()
        broker.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _bootstrap(venv: Path) -> None:
    """No Celery here: make the scratch venv (once) and run this script again under it."""
    python = venv / "bin" / "python"
    if os.environ.get("CELERY_BENCH_BOOTSTRAPPED"):
        raise SystemExit(f"celery_bench: celery still not importable under {sys.executable}")
    probe = [str(python), "-c", "import celery, kombu"]
    if not python.exists() or subprocess.run(probe, capture_output=True).returncode != 0:
        print(f"celery_bench: making the scratch venv {venv} (pip install -r requirements.txt)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "-r", str(HERE / "requirements.txt")]
        subprocess.run(pip, check=True)
    os.environ["CELERY_BENCH_BOOTSTRAPPED"] = "1"
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


def _on_signal(signum, _frame) -> None:
    raise SystemExit(128 + signum)  # so that the finally blocks stop what was started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000, help="burst size and sequential round trips (2000)")
    parser.add_argument("--concurrency", type=int, default=64, help="tasks in flight during the burst (64)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed round trips first, per worker (100)")
    parser.add_argument(
        "--worker",
        action="append",
        help="POOL[:CONCURRENCY[:PREFETCH_MULTIPLIER]] of a worker to measure, in turn (repeatable; "
        "default threads:64:1, see README)",
    )
    parser.add_argument("--prefetch", type=int, default=4, help="worker_prefetch_multiplier (Celery's default 4)")
    parser.add_argument(
        "--durable", action="store_true", help="also publisher confirms on task messages and persistent results"
    )
    parser.add_argument("--rabbitmq-server", default=RABBITMQ_SERVER, help=f"the server script ({RABBITMQ_SERVER})")
    parser.add_argument("--venv", default=DEFAULT_VENV, help=f"scratch venv if celery is missing ({DEFAULT_VENV})")
    parser.add_argument("--start-timeout", type=float, default=120.0, help="seconds for the broker / a worker to start")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds without a result before giving up")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, mnesia)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    if Celery is None:
        _bootstrap(Path(args.venv))
    if args.jobs < 1 or args.concurrency < 1:
        parser.error("--jobs and --concurrency must be >= 1")
    if not os.access(args.rabbitmq_server, os.X_OK):
        parser.error(f"--rabbitmq-server {args.rabbitmq_server}: not an executable (apt-get install rabbitmq-server)")
    args.worker = args.worker or ["threads:64:1"]
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    figures = run(args)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for name, values in figures.items():
            print(f"{name}:")
            for key, value in values.items():
                print(f"  {key:<30} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
