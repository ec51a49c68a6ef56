"""``workmesh bench series``: a job-sized write through the results service, then a one-field read.

By default the write is one worker job: a mesh of real processes (registry, results service,
gateway, a worker serving ``series-load`` from :mod:`workmesh.workers.examples.loadgen`) runs it,
and the job writes components x fields x steps values with ``ctx.series`` (through
:func:`workmesh.workers.examples._loaddata.write_bench_series`); the figure is from submit to the
job's result, whose series are stored by then. Then one field of every component is read back as a front end would
(ReadSeries). The results service is its own process, so its peak RSS is its own. With
``worker=False`` this process writes through a :class:`SeriesWriter` itself instead.
For InfluxDB the same data is also written directly (line protocol over HTTP, one client,
sequential requests of 10,000 lines, formatting not timed) to give the server's own ingest rate:
half before and half after the service run (this machine is shared; load drifts), on an influxd
of its own when the benchmark starts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp
import grpc
import numpy as np

from workmesh.services.bench._influxd import TempInfluxd
from workmesh.services.bench._series_compare import compare_variations
from workmesh.services.clients._model import Chunk, SeriesKey
from workmesh.services.clients._results import ResultsClient
from workmesh.services.core.limits import message_options
from workmesh.services.devmesh import DevMesh
from workmesh.services.results.stores._lineproto import encode_lines
from workmesh.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc, results_pb2
from workmesh.workers.examples._loaddata import HOUR_S, bench_values, write_bench_series

LOADGEN = "workmesh.workers.examples.loadgen:worker"
_SERVE = (
    "import asyncio; from workmesh.services.results import ResultsConfig, serve; "
    "asyncio.run(serve(ResultsConfig.from_env()))"
)


def _rss_peak(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


async def _direct_influx(
    url: str, db: str, components: range, fields: int, steps: int, *, drop: bool, batch_lines: int = 10_000
) -> float:
    """Seconds InfluxDB takes to ingest `components` of the data from one client (sequential requests)."""
    start = int(np.datetime64("2030-01-01T00:00:00", "s").astype(np.int64))
    ts = (start + np.arange(steps, dtype=np.int64) * HOUR_S) * 10**9
    busy = 0.0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
        async with http.post(f"{url}/query", data={"q": f'CREATE DATABASE "{db}"'}) as resp:
            resp.raise_for_status()
        pending: list[bytes] = []
        lines = 0
        for i, component in enumerate(components):
            chunk = Chunk(
                SeriesKey("direct", "bench", (("component", f"c{component:05d}"),)),
                ts,
                bench_values(component, fields, steps),
                time_unit=results_pb2.TIME_UNIT_SECONDS,
            )
            body, n = encode_lines(chunk)
            pending.append(body)
            lines += n
            if lines >= batch_lines or i == len(components) - 1:
                payload = b"".join(pending)
                pending, lines = [], 0
                began = time.perf_counter()
                async with http.post(f"{url}/write", params={"db": db, "precision": "s"}, data=payload) as resp:
                    if resp.status != 204:
                        raise RuntimeError(f"direct write failed: {resp.status} {await resp.text()}")
                busy += time.perf_counter() - began
        if drop:
            async with http.post(f"{url}/query", data={"q": f'DROP DATABASE "{db}"'}) as resp:
                resp.raise_for_status()
    return busy


async def bench_series(
    store: str = "parquet",
    components: int = 1000,
    fields: int = 10,
    steps: int = 8760,
    *,
    influx_url: str = "",
    direct: bool = True,
    worker: bool = True,
    variations: int = 1,
    reads: int = 1,
    local_reads: bool = True,
    out: Callable[[str], None] = print,
) -> dict:
    """Write components x fields x steps values through a results service process, read one field back.

    Args:
        store: ``"parquet"`` or ``"influx"``.
        influx_url: an InfluxDB to use; empty: start a throwaway ``influxd`` for the run.
        direct: for InfluxDB, also measure the direct line-protocol ingest of the same data.
        worker: run the write as a worker job (``series-load`` on a mesh of real processes:
            registry, results service, gateway, worker); False: this process writes through a
            SeriesWriter itself (the results service alone).
        variations: with more than 1, also write that many jobs minus one more and read one
            field of all of them in one aligned comparison read (compare_s, compare_values).
        reads: how many times each read is made (on a shared machine one read is noisy);
            read_s and compare_s are then the median, read_runs_s and compare_runs_s every run.
        local_reads: the reads take the service's Parquet files over its Unix socket (this
            process is on its host); False: over gRPC (see ``ResultsClient``).
        out: where the human-readable lines go.

    Returns:
        The figures: values, write_s (for a job: submit to result, series stored), values_per_s,
        read_s, read_values, total_s, server_peak_rss_bytes; for InfluxDB also
        direct_values_per_s and ratio.
    """
    if store not in ("parquet", "influx"):
        raise ValueError(f"store must be parquet or influx, got {store!r}")
    if reads < 1:
        raise ValueError(f"reads must be at least 1, got {reads}")
    values = components * fields * steps
    figures: dict = {
        "store": store,
        "via": "worker job" if worker else "client",
        "components": components,
        "fields": fields,
        "steps": steps,
        "values": values,
    }
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="workmesh-bench-")))
        given_url = influx_url
        direct_db = f"bench_direct_{uuid.uuid4().hex[:8]}"

        async def direct_half(half: range, drop: bool) -> float:
            # Half before and half after the run through the service, so that both see the same
            # machine load on average; on an influxd of its own (stopped in between, its data
            # kept) when the benchmark starts them, so neither run pays for the other's compactions.
            if given_url:
                return await _direct_influx(given_url, direct_db, half, fields, steps, drop=drop)
            with TempInfluxd(tmp / "influxd-direct") as own:
                return await _direct_influx(own.url, direct_db, half, fields, steps, drop=drop)

        measure_direct = store == "influx" and direct
        direct_s = await direct_half(range(components // 2), False) if measure_direct else 0.0
        if store == "influx" and not influx_url:
            influx_url = stack.enter_context(TempInfluxd(tmp / "influxd")).url
        env = {
            "WORKMESH_RESULTS_STORE": store,
            "WORKMESH_RESULTS_DIR": str(tmp / "series"),
            "INFLUX_URL": influx_url,
            "PYTHONUNBUFFERED": "1",
        }
        run = _through_worker if worker else _through_client
        figures.update(await run(stack, tmp, env, components, fields, steps, variations, reads, local_reads))
        # the client falls back to gRPC for good when it cannot take the files
        figures["reads_via"] = "local files" if store == "parquet" and figures.pop("client_local") else "gRPC"
        write_s, read_s = figures["write_s"], figures["read_s"]
        figures.update(values_per_s=values / write_s, total_s=write_s + read_s)
        out(f"store {store}: {components} components x {fields} fields x {steps} steps = {values:,} values")
        out(
            f"write through the results service ({figures['via']}): {write_s:.2f} s, "
            f"{values / write_s / 1e6:.2f} M values/s"
        )
        out(
            f"read one field of all {components} components ({figures['reads_via']}): {read_s:.3f} s "
            f"({figures['read_values']:,} values)" + _runs(figures["read_runs_s"])
        )
        out(
            f"total: {write_s + read_s:.2f} s; results service peak RSS: "
            f"{figures['server_peak_rss_bytes'] / 2**20:.0f} MiB"
        )
        if variations > 1:
            out(
                f"compare field f0 of {variations} variations x {components} components (aligned on time): "
                f"{figures['compare_s']:.3f} s ({figures['compare_values']:,} values)"
                f"{_runs(figures['compare_runs_s'])}; results service peak RSS then: "
                f"{figures['compare_peak_rss_bytes'] / 2**20:.0f} MiB (the extra jobs written in "
                f"{figures['variations_write_s']:.1f} s)"
            )
        if measure_direct:
            direct_s += await direct_half(range(components // 2, components), True)
            figures.update(
                direct_s=direct_s, direct_values_per_s=values / direct_s, ratio=(values / write_s) / (values / direct_s)
            )
            out(
                f"direct line-protocol ingest (one client): {direct_s:.2f} s, "
                f"{values / direct_s / 1e6:.2f} M values/s; results service / direct = {figures['ratio']:.2f}"
            )
    return figures


async def _through_worker(
    stack: contextlib.ExitStack,
    tmp: Path,
    env: dict,
    components: int,
    fields: int,
    steps: int,
    variations: int = 1,
    reads: int = 1,
    local_reads: bool = True,
) -> dict:
    """One ``series-load`` job on a mesh of real processes; the read is a front end's ReadSeries."""
    mesh = stack.enter_context(
        DevMesh(workers=(LOADGEN,), results=True, database_url="memory://", data_dir=tmp, log_dir=tmp, env=env)
    )
    results = next(p for p in mesh.processes if p.name == "results")
    job, result, write_s = await _run_job(mesh.gateway_address, components, fields, steps)
    async with ResultsClient(mesh.results_address, timeout=600, local_reads=local_reads) as client:
        figures = await _read_back(client, job, result.series, components, fields, steps, reads)
        figures["server_peak_rss_bytes"] = _rss_peak(results.popen.pid)
        if variations > 1:
            figures.update(await compare_variations(client, job, variations, components, fields, steps, reads))
            figures["compare_peak_rss_bytes"] = _rss_peak(results.popen.pid)
        figures["client_local"] = client.local_reads
        await client.delete(job)
    return {
        "write_s": write_s,
        "handler_s": result.outputs["handler_s"],
        "handler_cpu_s": result.outputs["handler_cpu_s"],
        **figures,
    }


async def _through_client(
    stack: contextlib.ExitStack,
    tmp: Path,
    env: dict,
    components: int,
    fields: int,
    steps: int,
    variations: int = 1,
    reads: int = 1,
    local_reads: bool = True,
) -> dict:
    """This process writes through a SeriesWriter to a results service process of its own."""
    port = _free_port()
    env = {**os.environ, **env, "WORKMESH_RESULTS_ADDR": f"127.0.0.1:{port}"}
    env.pop("CONSUL_HTTP_ADDR", None)  # a benchmark server need not be discoverable
    log = open(tmp / "results.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVE], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    stack.callback(_stop, server, log)
    await _wait_port(port, server, tmp / "results.log")
    job = f"bench-{uuid.uuid4().hex[:8]}"
    async with ResultsClient(f"127.0.0.1:{port}", timeout=600, local_reads=local_reads) as client:
        began, cpu = time.perf_counter(), time.process_time()
        writer = client.writer(job, time_unit="s")
        await write_bench_series(writer, components, fields, steps)
        handler_s, handler_cpu_s = time.perf_counter() - began, time.process_time() - cpu
        refs = await writer.close()
        write_s = time.perf_counter() - began
        figures = await _read_back(client, job, refs, components, fields, steps, reads)
        figures["server_peak_rss_bytes"] = _rss_peak(server.pid)
        if variations > 1:
            figures.update(await compare_variations(client, job, variations, components, fields, steps, reads))
            figures["compare_peak_rss_bytes"] = _rss_peak(server.pid)
        figures["client_local"] = client.local_reads
        await client.delete(job)
    return {"write_s": write_s, "handler_s": handler_s, "handler_cpu_s": handler_cpu_s, **figures}


async def _read_back(
    client: ResultsClient, job: str, refs, components: int, fields: int, steps: int, reads: int = 1
) -> dict:
    """Read field f0 of every component `reads` times; check that everything written is there."""
    runs = []
    for _ in range(reads):
        began = time.perf_counter()
        read = await client.read(job, fields=["f0"])
        runs.append(time.perf_counter() - began)
    read_values = sum(len(s.timestamps) for s in read)
    stored = sum(ref.count for ref in refs)
    if len(refs) != components * fields or read_values != components * steps or stored != components * fields * steps:
        raise RuntimeError(
            f"benchmark data incomplete: {len(refs)} refs of {stored:,} values, {read_values:,} values read"
        )
    return {"read_s": float(np.median(runs)), "read_runs_s": runs, "read_values": read_values}


def _runs(runs: list[float]) -> str:
    """`` (median of N: a, b, c s)`` when a read was made more than once."""
    if len(runs) < 2:
        return ""
    return f" (median of {len(runs)}: {', '.join(f'{r:.3f}' for r in runs)} s)"


async def _run_job(gateway: str, components: int, fields: int, steps: int) -> tuple[str, common_pb2.JobResult, float]:
    """Submit a ``series-load`` job and follow it; returns its id, result and seconds to the result."""
    params = {
        k: common_pb2.ParamValue(int_value=v)
        for k, v in {"components": components, "fields": fields, "steps": steps}.items()
    }
    options = message_options()
    async with grpc.aio.insecure_channel(gateway, options=options) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        began = time.perf_counter()
        submitted = await stub.SubmitJob(
            gateway_pb2.SubmitJobRequest(workflow_type="series-load", params=params), timeout=30
        )
        job = submitted.job.job_id
        async for event in stub.WatchJob(gateway_pb2.WatchJobRequest(job_id=job), timeout=1800):
            kind = event.WhichOneof("payload")
            if kind == "result":
                return job, event.result, time.perf_counter() - began
            if kind == "error":
                raise RuntimeError(f"the series-load job failed: {event.error.code}: {event.error.message}")
    raise RuntimeError(f"the series-load job {job} ended without a result")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"results service exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"results service did not listen on {port} within {timeout}s")
        await asyncio.sleep(0.05)


def _stop(proc: subprocess.Popen, log) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
    log.close()
