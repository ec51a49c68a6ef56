"""Two parts of ``workmesh bench series``: the comparison read of variations, and compaction.

* ``--variations N``: after the benchmark job, N - 1 more jobs of the same shape (values scaled
  per variation) are written through the same results service, then one field of all N jobs is
  read in one ReadSeries — series of equal measurement and tags on one time axis, as the
  comparison view of a front end needs them.
* ``--small-batches N``: a job written in N small batches (a flush after each chunk, so one part
  file per batch) is read before and after :func:`compact_job` merges its parts — through a
  results server in this process over a Parquet store of its own.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from workmesh.services.clients._results import ResultsClient
from workmesh.services.clients._writer import SeriesWriter
from workmesh.services.results import ParquetStore, ResultsConfig, create_server
from workmesh.services.results.stores._compaction import compact_job
from workmesh.workers.examples._loaddata import HOUR_S, bench_values

_START = int(np.datetime64("2030-01-01T00:00:00", "s").astype(np.int64))

__all__ = ["bench_small_batches", "compare_variations"]


async def write_variation(writer: SeriesWriter, variation: int, components: int, fields: int, steps: int) -> None:
    """The benchmark series of one more variation: the same profiles, scaled per variation."""
    ts = _START + np.arange(steps, dtype=np.int64) * HOUR_S
    scale = 1.0 + 0.05 * variation
    for component in range(components):
        values = {k: v * scale for k, v in bench_values(component, fields, steps).items()}
        await writer.series("bench", component=f"c{component:05d}").write(ts, **values)


async def compare_variations(
    client: ResultsClient, first_job: str, variations: int, components: int, fields: int, steps: int, reads: int = 1
) -> dict:
    """Write variations 2..N next to `first_job`, read field f0 of all N aligned `reads` times; delete the extra jobs.

    compare_s is the median of the reads, compare_runs_s every read.
    """
    jobs = [first_job] + [f"{first_job}-v{i}" for i in range(1, variations)]
    began = time.perf_counter()
    for i, job in enumerate(jobs[1:], start=1):
        writer = client.writer(job, time_unit="s")
        await write_variation(writer, i, components, fields, steps)
        await writer.close()
    written_s = time.perf_counter() - began
    try:
        runs = []
        for _ in range(reads):
            began = time.perf_counter()
            read = await client.read(jobs, fields=["f0"])
            runs.append(time.perf_counter() - began)
        values = sum(len(s.timestamps) for s in read)
        by_key: dict[tuple, list] = {}
        for series in read:
            by_key.setdefault((series.measurement, tuple(sorted(series.tags.items()))), []).append(series)
        aligned = all(
            len(group) == variations and all(np.array_equal(s.timestamps, group[0].timestamps) for s in group)
            for group in by_key.values()
        )
        if len(read) != components * variations or values != components * variations * steps or not aligned:
            raise RuntimeError(f"comparison read incomplete: {len(read)} series, {values:,} values, aligned={aligned}")
    finally:
        for job in jobs[1:]:
            await client.delete(job)
    return {
        "variations": variations,
        "compare_s": float(np.median(runs)),
        "compare_runs_s": runs,
        "compare_values": values,
        "variations_write_s": written_s,
    }


async def bench_small_batches(
    batches: int = 10_000,
    components: int = 1000,
    fields: int = 2,
    steps: int = 8760,
    *,
    out: Callable[[str], None] = print,
) -> dict:
    """Read one field of a job written in `batches` small batches, before and after compaction.

    Each component's `steps` are written in ``batches // components`` slices; every slice is
    flushed on its own, so the job has one part file per batch until it is compacted.
    """
    slices = max(1, batches // components)
    edges = np.linspace(0, steps, slices + 1).astype(int)
    ts = _START + np.arange(steps, dtype=np.int64) * HOUR_S
    with tempfile.TemporaryDirectory(prefix="workmesh-bench-compact-") as tmp:
        store = ParquetStore(Path(tmp) / "series")
        server, port = create_server(ResultsConfig(listen="127.0.0.1:0", compaction_delay=-1), store)
        await server.start()
        job = f"bench-small-{uuid.uuid4().hex[:8]}"
        try:
            async with ResultsClient(f"127.0.0.1:{port}", timeout=600) as client:
                writer = client.writer(job, time_unit="s")
                began = time.perf_counter()
                for lo, hi in zip(edges, edges[1:], strict=False):
                    for component in range(components):
                        values = {k: v[lo:hi] for k, v in bench_values(component, fields, steps).items()}
                        await writer.series("bench", component=f"c{component:05d}").write(ts[lo:hi], **values)
                        await writer.flush()
                await writer.close()
                write_s = time.perf_counter() - began
                parts_before = len(list((store.root / job).rglob("part-*.parquet")))

                async def read() -> float:
                    began = time.perf_counter()
                    found = await client.read(job, fields=["f0"])
                    if sum(len(s.timestamps) for s in found) != components * steps:
                        raise RuntimeError("small-batch job read back incomplete")
                    return time.perf_counter() - began

                before = min([await read() for _ in range(2)])
                began = time.perf_counter()
                result = compact_job(store, job)
                if result is None:
                    raise RuntimeError(f"small-batch job {job} vanished before compaction")
                compact_s = time.perf_counter() - began
                after = min([await read() for _ in range(2)])
        finally:
            await server.stop(0)
            await store.close()
    out(
        f"job of {components} components x {fields} fields x {steps} steps written in "
        f"{slices * components:,} batches ({write_s:.1f} s): {parts_before:,} part files"
    )
    out(
        f"read one field of all {components} components: {before:.3f} s before compaction, {after:.3f} s after "
        f"({result.parts_after} parts; compaction took {compact_s:.1f} s)"
    )
    return {
        "batches": slices * components,
        "small_write_s": write_s,
        "parts_before": parts_before,
        "parts_after": result.parts_after,
        "read_before_s": before,
        "read_after_s": after,
        "compact_s": compact_s,
    }
