"""Micro-benchmark of the SQL job store: create + 5 appends per job, as the dispatcher does.

Run: ``/tmp/venv/bin/python -m tests.store.bench_store --store sqlite|postgres|memory``
(postgres: the given ``--url`` or a throw-away server started from the local binaries).
Prints jobs/s with 64 concurrent jobs, and the per-job latency of jobs run one after the other.
Not a test: figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator

from workmesh.services.gateway.store import JobRecord, JobUpdate
from workmesh.v1 import common_pb2 as pb


async def one_job(store) -> None:
    job_id = uuid.uuid4().hex
    await store.create(JobRecord(job_id=job_id, workflow_type="bench", params={"n": pb.ParamValue(int_value=1)}))
    await store.append(
        job_id,
        [pb.JobEvent(status=pb.StatusChange(status=pb.JOB_STATUS_DISPATCHED))],
        JobUpdate(status=pb.JOB_STATUS_DISPATCHED, attempts=1, instance_id="w-1"),
    )
    await store.append(
        job_id,
        [pb.JobEvent(status=pb.StatusChange(status=pb.JOB_STATUS_RUNNING))],
        JobUpdate(status=pb.JOB_STATUS_RUNNING),
    )
    await store.append(
        job_id, [pb.JobEvent(progress=pb.Progress(fraction=0.5))], JobUpdate(progress=pb.Progress(fraction=0.5))
    )
    result = pb.JobResult(data=b"ok")
    await store.append(job_id, [pb.JobEvent(result=result)])
    await store.append(
        job_id,
        [pb.JobEvent(status=pb.StatusChange(status=pb.JOB_STATUS_SUCCEEDED))],
        JobUpdate(status=pb.JOB_STATUS_SUCCEEDED, result=result),
    )


async def bench(store, jobs: int, concurrency: int, sequential: int) -> dict[str, float]:
    if hasattr(store, "start"):
        await store.start()
    await one_job(store)  # warm up: migrations, connections, statement caches
    latencies = []
    for _ in range(sequential):
        started = time.perf_counter()
        await one_job(store)
        latencies.append(time.perf_counter() - started)
    commits = getattr(store, "commits", 0)
    gate = asyncio.Semaphore(concurrency)

    async def limited() -> None:
        async with gate:
            await one_job(store)

    started = time.perf_counter()
    await asyncio.gather(*(limited() for _ in range(jobs)))
    elapsed = time.perf_counter() - started
    commits = getattr(store, "commits", 0) - commits
    await store.close()
    latencies.sort()
    latencies = latencies or [0.0]
    return {
        "jobs_per_s": jobs / elapsed,
        "ops_per_commit": jobs * 6 / commits if commits else 0.0,
        "seq_p50_ms": statistics.median(latencies) * 1000,
        "seq_p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


@contextlib.contextmanager
def database(kind: str, url: str | None) -> Iterator[str | None]:
    if kind == "memory":
        yield None
    elif url:
        yield url
    elif kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/jobs.db"
    else:
        from tests.fixtures.postgres import PostgresServer, skip_reason

        if skip_reason():
            raise SystemExit(skip_reason())
        server = PostgresServer()
        try:
            server.start()
            yield server.url(server.create_database())
        finally:
            server.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgres", "memory"], default="sqlite")
    parser.add_argument("--url", help="an existing database instead of a throw-away one")
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--sequential", type=int, default=300)
    parser.add_argument("--sqlite-synchronous", default="NORMAL")
    args = parser.parse_args()
    with database(args.store, args.url) as url:
        if url is None:
            from workmesh.services.gateway.store._memory import MemoryJobStore

            store = MemoryJobStore()
        else:
            from workmesh.services.gateway.store.sql._store import SqlJobStore

            store = SqlJobStore(url, sqlite_synchronous=args.sqlite_synchronous)
        figures = asyncio.run(bench(store, args.jobs, args.concurrency, args.sequential))
    print(
        f"{args.store}: {figures['jobs_per_s']:.0f} jobs/s with {args.concurrency} concurrent "
        f"({figures['ops_per_commit']:.1f} writes per commit); sequential job p50 "
        f"{figures['seq_p50_ms']:.2f} ms, p99 {figures['seq_p99_ms']:.2f} ms (create + 5 appends)"
    )


if __name__ == "__main__":
    main()
