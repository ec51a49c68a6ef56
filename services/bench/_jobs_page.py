"""``bench_jobs_page``: the console's Jobs page with many jobs — what one refresh of it costs.

The job store is seeded with N ended jobs (:func:`seed_jobs`: ten owners, a hundred ``project``
label values, some workflows with steps, and one job of the owner ``needle`` — the oldest, so
finding it filters the whole table), then a dev mesh (registry, gateway with HTTP, the basic
worker) is started on that store and the HTTP requests the page makes are timed: the first
page, a page deep in the list (by its page token), and the owner, label and parent filters.
Each figure is the latency of one ``GET /v1/jobs`` of 50 jobs, over ``repeats`` requests.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from workmesh.services.gateway.store import JobRecord, JobUpdate
from workmesh.services.gateway.store.sql._store import SqlJobStore
from workmesh.v1 import common_pb2

BASIC = "workmesh.workers.examples.basic:worker"
PAGE = 50
NEEDLE = "needle"  # the owner of the one oldest job
STEPS_PER_PARENT = 10


def _job(job_id: str, i: int, parent_id: str = "") -> JobRecord:
    return JobRecord(
        job_id=job_id,
        workflow_type="echo",
        params={"message": common_pb2.ParamValue(string_value=f"job {i}")},
        labels={"workmesh.user": NEEDLE if i == 0 else f"user{i % 10}", "project": f"p{i % 100}"},
        parent_id=parent_id,
        step_name=f"step-{i}" if parent_id else "",
    )


async def seed_jobs(url: str, count: int, *, batch: int = 500) -> dict[str, list[str]]:
    """Create `count` ended jobs (SUCCEEDED; every 7th FAILED) in the job store at `url`.

    Job 0, the oldest, belongs to the owner :data:`NEEDLE`, the others to ``user0``..``user9``,
    labelled ``project=p0``..``p99``; of every 100 jobs one is a workflow whose next
    :data:`STEPS_PER_PARENT` jobs are its steps. Returns ``{"ids": [...], "parents": [...]}``,
    both newest first as the store lists them.
    """
    ids = [uuid.uuid4().hex for _ in range(count)]
    parent_of = {
        k: ids[i] for i in range(50, count - STEPS_PER_PARENT, 100) for k in range(i + 1, i + 1 + STEPS_PER_PARENT)
    }
    store = SqlJobStore(url, exclusive=True)
    await store.start()

    async def one(i: int) -> None:
        await store.create(_job(ids[i], i, parent_of.get(i, "")))
        status = common_pb2.JOB_STATUS_FAILED if i % 7 == 3 else common_pb2.JOB_STATUS_SUCCEEDED
        event = common_pb2.JobEvent(status=common_pb2.StatusChange(status=status))
        await store.append(ids[i], [event], JobUpdate(status=status))

    try:
        if count:
            await one(0)  # alone: the oldest
        for start in range(1, count, batch):  # concurrent creates commit together
            await asyncio.gather(*(one(i) for i in range(start, min(start + batch, count))))
        listed: list[str] = []
        after = None
        while page := await store.list_jobs(limit=1000, after=after):
            listed += [j.job_id for j in page]
            after = page[-1].job_id
    finally:
        await store.close()
    parents = set(parent_of.values())
    return {"ids": listed, "parents": [i for i in listed if i in parents]}


def _get(base: str, query: dict) -> tuple[float, dict]:
    start = time.perf_counter()
    with urllib.request.urlopen(f"{base}/v1/jobs?{urllib.parse.urlencode(query, doseq=True)}", timeout=60) as reply:
        body = json.loads(reply.read())
    return time.perf_counter() - start, body


def _timed(base: str, query: dict, repeats: int) -> dict:
    times, listed = [], 0
    for _ in range(repeats):
        seconds, body = _get(base, query)
        times.append(seconds * 1000)
        listed = len(body.get("jobs", []))
    times.sort()
    return {
        "jobs_listed": listed,
        "p50_ms": statistics.median(times),
        "p95_ms": times[min(len(times) - 1, int(len(times) * 0.95))],
        "max_ms": times[-1],
    }


def bench_jobs_page(url: str, data_dir: Path, jobs: int = 10_000, repeats: int = 30) -> dict:
    """Seed `jobs` into the store at `url`, start a mesh on it, time the Jobs page's requests."""
    from workmesh.services.devmesh import DevMesh

    started = time.perf_counter()
    seeded = asyncio.run(seed_jobs(url, jobs))
    seed_seconds = time.perf_counter() - started
    with DevMesh(workers=(BASIC,), results=False, database_url=url, data_dir=data_dir, log_dir=data_dir) as mesh:
        base = mesh.console_url.rstrip("/")
        _, first = _get(base, {"page_size": PAGE})
        token = first.get("nextPageToken", "")
        for _ in range(98):  # page 100: the token of the job 99 pages in
            _, page = _get(base, {"page_size": PAGE, "page_token": token})
            token = page.get("nextPageToken", "")
        queries = {
            "first_page": {"page_size": PAGE},
            "page_100": {"page_size": PAGE, "page_token": token},
            "owner": {"page_size": PAGE, "owner": "user3"},
            "owner_oldest_job_only": {"page_size": PAGE, "owner": NEEDLE},
            "label": {"page_size": PAGE, "labels": "project=p42"},
            "label_no_match": {"page_size": PAGE, "labels": "project=none"},
            "owner_and_label": {"page_size": PAGE, "owner": "user2", "labels": "project=p42"},
            "status_failed": {"page_size": PAGE, "statuses": "JOB_STATUS_FAILED"},
            "steps_of_a_parent": {"page_size": PAGE, "parent_id": seeded["parents"][len(seeded["parents"]) // 2]},
        }
        figures = {name: _timed(base, query, repeats) for name, query in queries.items()}
    return {
        "jobs": jobs,
        "page_size": PAGE,
        "repeats": repeats,
        "seed_seconds": seed_seconds,
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        **figures,
    }
