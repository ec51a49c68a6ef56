"""Fair share through a real gateway and real workers: owners, priorities, limits, the visible
queue, EstimateJob and reloading the shares file."""

from __future__ import annotations

import contextlib

import grpc
import pytest

from tests.gateway.mesh import Mesh, value
from tests.support import eventually_async, run
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g
from workmesh.workers.examples.basic import echo, sleep

Code = grpc.StatusCode
SHARES = """
[defaults.user]
max_queued = 3
[tenants.acme.users.bob]
max_running = 1
"""


@contextlib.asynccontextmanager
async def sleep_mesh(capacity: int, *more, **config):
    """A mesh with one worker of `sleep` (and `more` types) of `capacity`, listed by the gateway."""
    async with Mesh(**config) as mesh:
        await mesh.add_worker([sleep, *more], capacity=capacity)
        await mesh.wait_instances("sleep", 1)
        yield mesh


@pytest.fixture
def shares_file(tmp_path):
    path = tmp_path / "shares.toml"
    path.write_text(SHARES)
    return str(path)


def submit_request(
    wf: str = "sleep", tenant: str = "acme", user: str = "ann", priority: str = "", **params
) -> g.SubmitJobRequest:
    return g.SubmitJobRequest(
        workflow_type=wf, tenant=tenant, user=user, priority=priority, params={k: value(v) for k, v in params.items()}
    )


async def submit(mesh: Mesh, **kw) -> g.Job:
    return (await mesh.stub.SubmitJob(submit_request(**kw))).job


def test_owner_and_priority_are_kept_and_a_bad_priority_or_reserved_label_is_refused():
    async def body():
        async with sleep_mesh(1) as mesh:
            job = await submit(mesh, priority="high", seconds=0.0)
            assert (job.tenant, job.user, job.priority) == ("acme", "ann", 10)
            got = await mesh.job(job.job_id)
            assert (got.tenant, got.user, got.priority) == ("acme", "ann", 10)
            before = len(await mesh.store.list_jobs(limit=100))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await mesh.stub.SubmitJob(submit_request(priority="urgent"))
            assert err.value.code() == Code.INVALID_ARGUMENT and "priority" in err.value.details()
            request = submit_request()
            request.labels["workmesh.tenant"] = "other"
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await mesh.stub.SubmitJob(request)
            assert err.value.code() == Code.INVALID_ARGUMENT and "labels[workmesh.tenant]" in err.value.details()
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await mesh.stub.SubmitJob(submit_request(tenant="t" * 201))
            assert err.value.code() == Code.INVALID_ARGUMENT and "tenant" in err.value.details()
            assert len(await mesh.store.list_jobs(limit=100)) == before  # nothing stored

    run(body(), timeout=60.0)


def test_queued_limit_refuses_with_the_limit_and_the_count(shares_file):
    async def body():
        async with sleep_mesh(1, shares_file=shares_file) as mesh:
            first = await submit(mesh, seconds=30.0, steps=1)
            await mesh.wait_status(first.job_id, c.JOB_STATUS_RUNNING)
            queued = [await submit(mesh, seconds=0.0) for _ in range(3)]
            before = len(await mesh.store.list_jobs(limit=100))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await submit(mesh, seconds=0.0)
            assert err.value.code() == Code.RESOURCE_EXHAUSTED
            assert "max_queued" in err.value.details() and "is 3 and 3 jobs are queued" in err.value.details()
            assert len(await mesh.store.list_jobs(limit=100)) == before
            # Another user of the tenant is not limited by ann's queue.
            carl = await submit(mesh, user="carl", seconds=0.0)
            # The visible queue, in dispatch order: carl (no usage) first, then ann's jobs.
            places = [(await mesh.job(j.job_id)).queue for j in queued]
            assert [p.position for p in places] == [2, 3, 4]
            assert (await mesh.job(carl.job_id)).queue.position == 1
            assert all(p.queued == 4 for p in places)
            # No sleep job has finished yet: no runtimes to say when they start.
            assert not any(p.HasField("expected_start") for p in places)
            listed = await mesh.stub.ListJobs(g.ListJobsRequest(statuses=[c.JOB_STATUS_QUEUED]))
            assert {j.queue.position for j in listed.jobs} == {1, 2, 3, 4}
            view = await mesh.stub.GetQueue(g.GetQueueRequest(workflow_type="sleep"))
            owners = {(o.tenant, o.user): o for o in view.types[0].owners}
            assert view.policy == "fair" and view.types[0].capacity == 1
            assert owners[("acme", "ann")].queued == 3 and owners[("acme", "ann")].running == 1
            assert owners[("acme", "carl")].queued == 1
            assert owners[("acme", "ann")].weight == pytest.approx(0.5)
            await mesh.stub.CancelJob(g.CancelJobRequest(job_id=first.job_id))

    run(body(), timeout=60.0)


def test_an_idempotent_resubmit_at_the_queued_limit_returns_the_existing_job(shares_file):
    async def body():
        async with sleep_mesh(1, shares_file=shares_file) as mesh:
            first = await submit(mesh, seconds=30.0, steps=1)
            await mesh.wait_status(first.job_id, c.JOB_STATUS_RUNNING)
            keyed = submit_request(seconds=0.0)
            keyed.idempotency_key = "once"
            created = await mesh.stub.SubmitJob(keyed)
            queued = [created.job, *[await submit(mesh, seconds=0.0) for _ in range(2)]]  # ann at max_queued 3
            again = await mesh.stub.SubmitJob(keyed)
            assert again.existing and not created.existing
            assert again.job.job_id == created.job.job_id and again.job.user == "ann"
            before = len(await mesh.store.list_jobs(limit=100))
            fresh = submit_request(seconds=0.0)
            fresh.idempotency_key = "new"  # a key not seen: a new job, refused at the limit
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await mesh.stub.SubmitJob(fresh)
            assert err.value.code() == Code.RESOURCE_EXHAUSTED and "max_queued" in err.value.details()
            assert len(await mesh.store.list_jobs(limit=100)) == before
            assert (await mesh.job(queued[0].job_id)).status == c.JOB_STATUS_QUEUED
            await mesh.stub.CancelJob(g.CancelJobRequest(job_id=first.job_id))

    run(body(), timeout=60.0)


def test_the_light_user_goes_first_and_priority_orders_only_within_a_user():
    async def body():
        async with sleep_mesh(1) as mesh:
            blocker = await submit(mesh, seconds=0.3, steps=1)  # ann has used the slot
            heavy = [await submit(mesh, seconds=0.05, steps=1) for _ in range(3)]
            urgent = await submit(mesh, priority="high", seconds=0.05, steps=1)
            light = await submit(mesh, user="lee", priority="low", seconds=0.05, steps=1)
            for job in (blocker, *heavy, urgent, light):
                await mesh.wait_status(job.job_id, c.JOB_STATUS_SUCCEEDED)
            started = {j.job_id: (await mesh.job(j.job_id)).started_at.ToNanoseconds() for j in (*heavy, urgent, light)}
            order = sorted(started, key=started.get)
            assert order[0] == light.job_id  # lee has no usage: first, despite "low"
            assert order[1] == urgent.job_id  # within ann: high before her older jobs

    run(body(), timeout=60.0)


def test_watchjob_tells_a_queued_jobs_place_as_earlier_jobs_start():
    async def body():
        async with sleep_mesh(1) as mesh:
            blocker = await submit(mesh, seconds=30.0, steps=1)
            await mesh.wait_status(blocker.job_id, c.JOB_STATUS_RUNNING)
            earlier = [await submit(mesh, seconds=0.5, steps=1) for _ in range(2)]
            job = await submit(mesh, seconds=0.0)
            request = g.WatchJobRequest(job_id=job.job_id, queue_updates=True)
            events: list[c.JobEvent] = []
            async with contextlib.aclosing(aiter(mesh.stub.WatchJob(request))) as stream:
                async for event in stream:
                    events.append(event)
                    if event.WhichOneof("payload") == "queue" and len(events) == 2:
                        # Its first place is told at once (after the stored QUEUED event);
                        # then the blocker ends and the earlier jobs start one by one.
                        assert (event.queue.position, event.queue.queued) == (3, 3)
                        await mesh.stub.CancelJob(g.CancelJobRequest(job_id=blocker.job_id))
            kinds = [e.WhichOneof("payload") for e in events]
            left = kinds.index("status", 1)  # the first status after QUEUED: it left the queue
            assert events[left].status.status == c.JOB_STATUS_DISPATCHED
            assert "queue" not in kinds[left:]  # nothing about the queue once it left it
            places = [e.queue for e in events if e.WhichOneof("payload") == "queue"]
            positions = [p.position for i, p in enumerate(places) if i == 0 or p.position != places[i - 1].position]
            assert positions == [3, 2, 1]
            assert [p.queued for p in places][-1] == 1
            # Not stored: each has the seq of the stream's place, so seqs never go back.
            seqs = [e.seq for e in events]
            assert seqs == sorted(seqs)
            assert [e.seq for e in await mesh.follow(job.job_id)] == sorted({e.seq for e in events})
            for other in earlier:
                assert (await mesh.job(other.job_id)).status == c.JOB_STATUS_SUCCEEDED
            # Without queue_updates a stream has only stored events (the default is unchanged).
            assert all(e.WhichOneof("payload") != "queue" for e in await mesh.follow(job.job_id))

    run(body(), timeout=60.0)


def test_estimate_checks_params_like_submit_and_learns_from_finished_jobs():
    async def body():
        async with sleep_mesh(2, echo) as mesh:
            bad = g.EstimateJobRequest(workflow_type="sleep", params={"seconds": value(-1.0)})
            with pytest.raises(grpc.aio.AioRpcError) as est_err:
                await mesh.stub.EstimateJob(bad)
            with pytest.raises(grpc.aio.AioRpcError) as sub_err:
                await mesh.stub.SubmitJob(g.SubmitJobRequest(workflow_type="sleep", params=bad.params))
            assert est_err.value.code() == sub_err.value.code() == Code.INVALID_ARGUMENT
            assert est_err.value.details() == sub_err.value.details()
            unknown = await mesh.stub.EstimateJob(g.EstimateJobRequest(workflow_type="sleep"))
            assert unknown.basis == "unknown" and "no finished run" in unknown.reason
            assert not unknown.HasField("runtime_p50") and unknown.version == "1.0.0"
            for seconds in (0.02, 0.05, 0.1, 0.2) * 2:
                job = await submit(mesh, seconds=seconds, steps=1)
                await mesh.wait_status(job.job_id, c.JOB_STATUS_SUCCEEDED)
            est = await mesh.stub.EstimateJob(
                g.EstimateJobRequest(workflow_type="sleep", params={"seconds": value(0.4)})
            )
            assert est.basis == "params" and est.runs == 8
            assert 0.2 < est.runtime_p50.ToNanoseconds() / 1e9 < 1.5
            assert est.HasField("expected_start") and est.HasField("expected_finish")
            assert est.queue_position == 1
            info = (await mesh.types())["sleep"]
            assert info.runtime_runs == 8 and info.typical_runtime.ToNanoseconds() > 0
            # Now queued jobs get an expected start from the simulated queue.
            busy = [await submit(mesh, seconds=1.0, steps=1) for _ in range(3)]
            await mesh.wait_status(busy[0].job_id, c.JOB_STATUS_RUNNING)
            place = (await mesh.job(busy[2].job_id)).queue
            assert place.position == 1 and place.HasField("expected_start")
            assert place.expected_start.ToNanoseconds() >= busy[2].created_at.ToNanoseconds()
            for job in busy:
                await mesh.stub.CancelJob(g.CancelJobRequest(job_id=job.job_id))

    run(body(), timeout=60.0)


def test_sighup_reload_keeps_the_previous_shares_on_a_bad_file(tmp_path):
    path = tmp_path / "shares.toml"
    path.write_text("[tenants.acme]\nweight = 2\n")

    async def body():
        async with Mesh(shares_file=str(path)) as mesh:
            scheduler = mesh.gateway.dispatcher.queue.scheduler
            assert scheduler.shares.tenant_weight("acme") == 2
            path.write_text("[tenants.acme]\nweight = -3\n")
            assert not mesh.gateway.reload_shares()
            assert scheduler.shares.tenant_weight("acme") == 2
            path.write_text("[tenants.acme]\nweight = 5\n")
            assert mesh.gateway.reload_shares()
            assert scheduler.shares.tenant_weight("acme") == 5

    run(body(), timeout=60.0)


def test_a_bad_shares_file_stops_the_gateway_from_starting(tmp_path):
    path = tmp_path / "shares.toml"
    path.write_text("[tenants.acme]\nmax_running = 0\n")

    async def body():
        with pytest.raises(ValueError, match="tenants.acme.max_running"):
            async with Mesh(shares_file=str(path)):
                pass

    run(body(), timeout=60.0)


def test_fifo_switch_keeps_submission_order():
    async def body():
        async with sleep_mesh(1, scheduler="fifo") as mesh:
            jobs = [await submit(mesh, seconds=0.05, steps=1) for _ in range(3)]
            jobs.append(await submit(mesh, user="lee", priority="high", seconds=0.05, steps=1))
            for job in jobs:
                await mesh.wait_status(job.job_id, c.JOB_STATUS_SUCCEEDED)
            started = [(await mesh.job(j.job_id)).started_at.ToNanoseconds() for j in jobs]
            assert started == sorted(started)

    run(body(), timeout=60.0)


def test_a_running_limit_holds_back_only_its_owner(shares_file):
    async def body():
        async with sleep_mesh(3, shares_file=shares_file) as mesh:
            bobs = [await submit(mesh, user="bob", seconds=30.0, steps=1) for _ in range(2)]
            ann = await submit(mesh, seconds=30.0, steps=1)
            await mesh.wait_status(bobs[0].job_id, c.JOB_STATUS_RUNNING)
            await mesh.wait_status(ann.job_id, c.JOB_STATUS_RUNNING)  # bob's second job waits, ann's runs

            async def bob_waits():
                return (await mesh.job(bobs[1].job_id)).status == c.JOB_STATUS_QUEUED

            assert await bob_waits()
            await mesh.stub.CancelJob(g.CancelJobRequest(job_id=bobs[0].job_id))
            await mesh.wait_status(bobs[1].job_id, c.JOB_STATUS_RUNNING)
            for job in (bobs[1], ann):
                await mesh.stub.CancelJob(g.CancelJobRequest(job_id=job.job_id))
            await eventually_async(lambda: _all_done(mesh), timeout=15)

    run(body(), timeout=60.0)


async def _all_done(mesh: Mesh) -> bool:
    jobs = await mesh.store.list_jobs(limit=100)
    return all(j.terminal for j in jobs)
