"""Regression tests of issue 9: no bad input gets past validation, no job is ever stuck, no
capacity leaks. Each test names the defect it pins; all run against a real gateway and real
workers (in this process) on the memory store or a real SQLite file."""

from __future__ import annotations

import asyncio
import itertools

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2

from tests.gateway import hardening_flows as flows
from tests.gateway.mesh import TERMINAL, Mesh, statuses
from tests.support import eventually_async, run
from workmesh.services.gateway.store import JobRecord
from workmesh.services.gateway.store.sql._store import SqlJobStore
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g
from workmesh.v1.gateway_pb2_grpc import GatewayStub

Code = grpc.StatusCode
MIB = 1024 * 1024


async def free_capacity(mesh: Mesh, name: str) -> int:
    return (await mesh.types())[name].free_capacity


async def submit_code(mesh: Mesh, request: g.SubmitJobRequest) -> tuple[Code, str]:
    try:
        await mesh.stub.SubmitJob(request)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return Code.OK, ""


async def job_ids(mesh: Mesh) -> list[str]:
    reply = await mesh.stub.ListJobs(g.ListJobsRequest(page_size=1000))
    return [j.job_id for j in reply.jobs]


def typed_request(timeout: tuple[int, int] | None = None, **params: c.ParamValue) -> g.SubmitJobRequest:
    request = g.SubmitJobRequest(workflow_type="typed", params=params)
    if timeout is not None:
        request.timeout.seconds, request.timeout.nanos = timeout
    return request


async def typed_mesh(mesh: Mesh, capacity: int = 3) -> None:
    await mesh.add_worker([flows.typed, flows.nap], capacity=capacity)
    for name in ("typed", "nap"):
        await mesh.wait_instances(name, 1)


# -- defect 1: a timeout that overflows a datetime --------------------------------------------

OVERFLOWING_TIMEOUTS = [
    (315576000000, 0),  # the largest Duration protobuf allows: 10,000 years
    (10**12, 0),  # beyond what a Duration may hold
    (86400 * 365 * 200, 0),  # fits a datetime today, but past any sane bound
    (1, 1_000_000_000),  # nanos out of range: not a valid Duration
]


@pytest.mark.parametrize("timeout", OVERFLOWING_TIMEOUTS, ids=[f"{s}s{n}ns" for s, n in OVERFLOWING_TIMEOUTS])
def test_overflowing_timeout_is_refused_and_nothing_leaks(timeout):
    async def main():
        async with Mesh() as mesh:
            await typed_mesh(mesh, capacity=3)
            for _ in range(3):  # with capacity 3, three such requests used to block the worker
                code, details = await submit_code(mesh, typed_request(timeout=timeout))
                assert code == Code.INVALID_ARGUMENT, (code, details)
                assert "timeout" in details
            assert await job_ids(mesh) == []  # nothing stored
            assert await free_capacity(mesh, "typed") == 3
            job = await mesh.submit("nap", seconds=0.05)  # valid jobs of every type still run
            assert statuses(await mesh.follow(job.job_id))[-1] == c.JOB_STATUS_SUCCEEDED

    run(main(), timeout=120.0)


_DIRECT = itertools.count()


async def store_directly(mesh: Mesh, params=None, **fields) -> JobRecord:
    """A job stored as an older (unvalidating) gateway would have: the dispatcher must cope."""
    record = JobRecord(job_id=f"direct-{next(_DIRECT)}", workflow_type="typed", params=params or {}, **fields)
    stored, _ = await mesh.store.create(record)
    return stored


def test_a_job_that_breaks_the_dispatcher_fails_and_gives_its_slot_back():
    """Whatever a stored job carries, dispatching it ends it and returns the slot: an absurd
    timeout is capped (the job runs), one no deadline can be computed from fails the job."""

    async def main():
        async with Mesh() as mesh:
            await typed_mesh(mesh, capacity=3)
            timeouts = {
                1e300: c.JOB_STATUS_SUCCEEDED,
                float("inf"): c.JOB_STATUS_SUCCEEDED,
                float("nan"): c.JOB_STATUS_FAILED,
            }
            records = {(await store_directly(mesh, timeout_s=t)).job_id: status for t, status in timeouts.items()}
            for job_id in records:
                record = await mesh.store.get(job_id)
                try:
                    mesh.gateway.dispatcher.submitted(record)
                except Exception as exc:  # noqa: BLE001 - the assertion says what was wrong
                    pytest.fail(f"dispatching job {job_id} raised {exc!r}")
            for job_id, status in records.items():
                job = await mesh.wait_status(job_id, *TERMINAL)
                assert job.status == status, job
                if status == c.JOB_STATUS_FAILED:
                    assert job.error.code == "INTERNAL"
            await eventually_async(lambda: _capacity_is(mesh, 3), timeout=10)
            job = await mesh.submit("nap", seconds=0.05)
            assert statuses(await mesh.follow(job.job_id))[-1] == c.JOB_STATUS_SUCCEEDED

    run(main(), timeout=120.0)


def test_a_bad_stored_job_does_not_break_lease_rounds_after_a_restart(tmp_path):
    """A store holding such a job from before (it made every lease round fail): the restarted
    gateway runs it with its deadline capped, and goes on."""
    url = f"sqlite:///{tmp_path}/jobs.db"

    async def main():
        store = SqlJobStore(url, retry_for=5.0)
        await store.start()
        await store.create(JobRecord(job_id="1-huge-timeout", workflow_type="typed", params={}, timeout_s=1e300))
        await store.close()
        store = SqlJobStore(url, retry_for=5.0, exclusive=True)
        async with Mesh(store=store) as mesh:
            await typed_mesh(mesh, capacity=3)
            job = await mesh.wait_status("1-huge-timeout", *TERMINAL)
            assert job.status == c.JOB_STATUS_SUCCEEDED, job
            await eventually_async(lambda: _capacity_is(mesh, 3), timeout=10)
            job = await mesh.submit("nap", seconds=0.05)
            assert statuses(await mesh.follow(job.job_id))[-1] == c.JOB_STATUS_SUCCEEDED
        await store.close()

    run(main(), timeout=120.0)


async def _capacity_is(mesh: Mesh, n: int) -> bool:
    return await free_capacity(mesh, "typed") == n


# -- defects 2 and 3: parameter values that crash parsing, invalid Timestamps ------------------


def _duration(seconds: int, nanos: int = 0) -> c.ParamValue:
    return c.ParamValue(duration_value=duration_pb2.Duration(seconds=seconds, nanos=nanos))


def _timestamp(seconds: int, nanos: int = 0) -> c.ParamValue:
    return c.ParamValue(datetime_value=timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos))


def _s(text: str) -> c.ParamValue:
    return c.ParamValue(string_value=text)


BAD_VALUES = [
    ("step", _s("")),
    ("step", _s(" ")),
    ("step", _s("1.8e308")),
    ("step", _s("1e308")),
    ("step", c.ParamValue(float_value=1.8e308)),
    ("step", c.ParamValue(float_value=float("nan"))),
    ("step", c.ParamValue(int_value=2**63 - 1)),
    ("step", c.ParamValue(int_value=-(2**63))),
    ("step", _s("9" * 400 + "h")),
    ("step", _s("P" + "9" * 400 + "D")),
    ("step", _s("1e20")),
    ("step", _duration(315576000001)),
    ("step", _duration(1, -1)),
    ("step", _duration(0, 10**9)),
    ("start", _s("9999-12-31T23:59:59-23:59")),
    ("start", _s("0001-01-01T00:00:00+23:59")),
    ("start", _timestamp(253402300800)),
    ("start", _timestamp(0, -1)),
    ("start", _timestamp(0, 10**9)),
    ("start", _timestamp(-62135596801)),
    ("ratio", c.ParamValue(float_value=float("inf"))),
    ("ratio", _s("1e999")),
    ("count", _s("9" * 5000)),
    # A message quoting a huge value used to exceed the client's 16 KiB trailer limit
    # (RESOURCE_EXHAUSTED "metadata size exceeds hard limit"): found by the long fuzz.
    ("colour", _s("x" * MIB)),
    ("text", c.ParamValue(int_value=1)),
    ("ß" * 100_000, _s("")),
]
BAD_IDS = [f"{name[:12]}-{i}" for i, (name, _) in enumerate(BAD_VALUES)]


@pytest.fixture(scope="module")
def bad_value_replies():
    """SubmitJob and RunJobs replies to every bad value, from one gateway; then its state."""

    async def main():
        async with Mesh() as mesh:
            await typed_mesh(mesh, capacity=3)
            submits = [await submit_code(mesh, typed_request(**{name: value})) for name, value in BAD_VALUES]
            items = [
                g.RunJobsItem(ref=str(i), job=typed_request(**{name: value}))
                for i, (name, value) in enumerate(BAD_VALUES)
            ]

            async def requests():
                yield g.RunJobsRequest(jobs=items)

            errors: dict[str, g.RunJobsError] = {}
            async for reply in mesh.stub.RunJobs(requests()):
                for update in reply.updates:
                    if update.WhichOneof("kind") == "error":
                        errors[update.ref] = update.error
            return submits, errors, await job_ids(mesh), await free_capacity(mesh, "typed")

    return run(main(), timeout=120.0)


@pytest.mark.parametrize("index", range(len(BAD_VALUES)), ids=BAD_IDS)
def test_bad_parameter_value_is_invalid_argument_naming_it(bad_value_replies, index):
    name = BAD_VALUES[index][0]
    code, details = bad_value_replies[0][index]
    assert code == Code.INVALID_ARGUMENT, (code, details[:300])
    assert f"params.{name}"[:200] in details  # (a huge name is cut in the message)


@pytest.mark.parametrize("index", range(len(BAD_VALUES)), ids=BAD_IDS)
def test_bad_parameter_value_in_runjobs_is_an_invalid_argument_item(bad_value_replies, index):
    name = BAD_VALUES[index][0]
    error = bad_value_replies[1].get(str(index))
    assert error is not None, "no error item"
    assert error.code == Code.INVALID_ARGUMENT.value[0], error.message[:300]
    assert f"params.{name}"[:200] in error.message


def test_bad_parameter_values_store_nothing_and_leak_nothing(bad_value_replies):
    assert bad_value_replies[2] == []
    assert bad_value_replies[3] == 3


def test_a_worker_that_cannot_decode_a_request_is_not_a_lost_worker():
    """An invalid Timestamp that got into the store: the worker's refusal fails the job once."""

    async def main():
        async with Mesh() as mesh:
            await typed_mesh(mesh, capacity=3)
            record = await store_directly(mesh, params={"start": _timestamp(253402300800)})
            mesh.gateway.dispatcher.submitted(record)
            job = await mesh.wait_status(record.job_id, c.JOB_STATUS_FAILED)
            assert job.error.code != "WORKER_LOST", job.error
            assert job.attempts == 1
            assert "start" in job.error.message
            assert await free_capacity(mesh, "typed") == 3

    run(main(), timeout=120.0)


def test_a_huge_job_id_gets_a_readable_not_found():
    async def main():
        async with Mesh() as mesh:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await mesh.stub.GetJob(g.GetJobRequest(job_id="é" * MIB))
            assert info.value.code() == Code.NOT_FOUND, info.value
            assert info.value.details().startswith("job_id: no job") and "left out" in info.value.details()

    run(main(), timeout=120.0)


# -- defect 4: integers beyond the store's range ---------------------------------------------


@pytest.mark.parametrize("after_seq", [2**63 - 1, 2**63, 2**64 - 1])
def test_watch_with_a_huge_after_seq_is_not_unknown(tmp_path, after_seq):
    async def main():
        store = SqlJobStore(f"sqlite:///{tmp_path}/jobs.db", retry_for=5.0, exclusive=True)
        async with Mesh(store=store) as mesh:
            await typed_mesh(mesh)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for _ in mesh.stub.WatchJob(g.WatchJobRequest(job_id="no-such-job", after_seq=after_seq)):
                    pass
            assert info.value.code() in (Code.NOT_FOUND, Code.INVALID_ARGUMENT), info.value
            assert "job_id" in info.value.details() or "after_seq" in info.value.details()
            job = await mesh.submit("nap", seconds=0.0)
            await mesh.follow(job.job_id)
            # A finished job watched after its end: the stream ends (or names after_seq).
            try:
                events = [
                    e async for e in mesh.stub.WatchJob(g.WatchJobRequest(job_id=job.job_id, after_seq=after_seq))
                ]
                assert events == []
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == Code.INVALID_ARGUMENT and "after_seq" in exc.details(), exc
        await store.close()

    run(main(), timeout=120.0)


# -- defect 5: WatchJob after the last event of a running job --------------------------------


def test_watch_beyond_the_last_event_ends_when_the_job_ends():
    async def main():
        async with Mesh() as mesh:
            await typed_mesh(mesh)
            job = await mesh.submit("nap", seconds=1.0, steps=2)
            await mesh.wait_status(job.job_id, c.JOB_STATUS_RUNNING)

            async def watch():
                return [e async for e in mesh.stub.WatchJob(g.WatchJobRequest(job_id=job.job_id, after_seq=1000))]

            watcher = asyncio.ensure_future(watch())
            await mesh.wait_status(job.job_id, c.JOB_STATUS_SUCCEEDED)
            # The gateway waits up to 30 s (watch_idle) between checks; it must end well before.
            assert await asyncio.wait_for(watcher, 10) == []

    run(main(), timeout=120.0)


# -- defect 6: big parameters and ListJobs ----------------------------------------------------


def test_jobs_with_big_parameters_do_not_break_listing():
    """Eight jobs with 10 MiB parameters used to make ListJobs RESOURCE_EXHAUSTED."""

    async def main():
        async with Mesh() as mesh:
            await typed_mesh(mesh, capacity=3)
            text = "x" * (10 * MIB)
            ids = set()
            for _ in range(8):  # 80 MiB of parameters: more than one gRPC message may carry
                job = await mesh.submit("typed", text=text)
                ids.add(job.job_id)
            # A client with gRPC's default 4 MiB receive limit lists them all ...
            seen: set[str] = set()
            token = ""
            while True:
                reply = await mesh.stub.ListJobs(g.ListJobsRequest(page_token=token))
                for job in reply.jobs:
                    seen.add(job.job_id)
                    assert "text" not in job.params and list(job.omitted_params) == ["text"]
                    assert job.params["colour"].string_value == "red"  # small values stay
                token = reply.next_page_token
                if not token:
                    break
            assert seen == ids
            # ... and GetJob (with a receive limit that fits the job) has everything.
            options = [("grpc.max_receive_message_length", 64 * MIB)]
            async with grpc.aio.insecure_channel(f"127.0.0.1:{mesh.port}", options=options) as channel:
                full = await GatewayStub(channel).GetJob(g.GetJobRequest(job_id=next(iter(ids))))
            assert len(full.params["text"].string_value) == 10 * MIB
            assert list(full.omitted_params) == []

    run(main(), timeout=120.0)
