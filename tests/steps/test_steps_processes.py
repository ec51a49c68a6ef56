"""Durable steps with real processes (issue 13): registry, gateway, a worker of the parents and
another of the steps. Each step run appends a line to a per-test file, so the tests count runs.

- SIGKILL of the parent's worker while step two runs: the re-executed parent gets step one's
  stored result (not run again) and awaits the running step two (not duplicated);
- step two fails, the job is retried: only step two runs again;
- cancel of the parent: its running step ends CANCELLED, no further step starts;
- one step name with other params: a clear FAILED_PRECONDITION, not the other step's result;
- SIGKILL of the gateway while step two runs, restart: the job completes, nothing runs twice.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from google.protobuf.json_format import MessageToDict

from tests.chaos.support import Cluster, Gateway, check_once
from tests.steps import flows
from tests.support import eventually
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

PARENTS = "tests.steps.flows:parents"
CHILDREN = "tests.steps.flows:children"
PARENT_TYPES = tuple(flows.parents.definitions)


def step_runs(log: Path) -> Counter:
    """How many times each step (by tag; ``parent`` for the parent's handler) started."""
    if not log.exists():
        return Counter()
    return Counter(line.split()[0] for line in log.read_text().splitlines() if line.strip())


def mesh(cluster: Cluster, parent_workers: int = 1) -> Gateway:
    gw = cluster.gateway()
    cluster.worker(CHILDREN, capacity=8, prefix="c")
    for _ in range(parent_workers):
        cluster.worker(PARENTS, capacity=4, prefix="p")
    gw.wait_types("steps-record", 1)
    # One worker registers each of its types as its own Consul service, so the gateway may see
    # one of them before another: wait for every type the parents' worker serves.
    for workflow_type in PARENT_TYPES:
        gw.wait_types(workflow_type, parent_workers)
    return gw


def children(gw: Gateway, job_id: str) -> dict[str, list[g.Job]]:
    """The parent's child jobs by step name (oldest first)."""
    listed = gw.stub.ListJobs(g.ListJobsRequest(page_size=100), timeout=30).jobs
    by_step: dict[str, list[g.Job]] = {}
    for job in sorted((j for j in listed if j.parent_id == job_id), key=lambda j: j.created_at.ToNanoseconds()):
        by_step.setdefault(job.step_name, []).append(job)
    return by_step


def submit(gw: Gateway, workflow_type: str, **params: Path | str) -> str:
    values = {k: c.ParamValue(string_value=str(v)) for k, v in params.items()}
    return gw.stub.SubmitJob(g.SubmitJobRequest(workflow_type=workflow_type, params=values), timeout=30).job.job_id


def wait_step_running(gw: Gateway, job_id: str, step: str, log: Path) -> g.Job:
    """Until the step's child job runs (its handler has written its line)."""

    def running():
        jobs = children(gw, job_id).get(step, [])
        return jobs[-1] if jobs and step_runs(log)[step] >= 1 and jobs[-1].status == c.JOB_STATUS_RUNNING else None

    return eventually(running, timeout=60, interval=0.05)


def test_parent_worker_killed_while_step_two_runs(cluster, tmp_path):
    log, hold = tmp_path / "runs.log", tmp_path / "hold"
    gw = mesh(cluster)
    job_id = submit(gw, "steps-flow", log=log, hold=hold)
    two = wait_step_running(gw, job_id, "two", log)
    victim = gw.job(job_id).instance_id
    cluster.kill(cluster.workers.pop(victim))
    cluster.worker(PARENTS, capacity=4, prefix="p")
    # The parent runs again (attempt 2) and waits on the step two that still runs.
    eventually(lambda: step_runs(log)["parent"] == 2, timeout=60, interval=0.05)
    hold.touch()
    done = gw.wait_terminal([job_id], timeout=90)[job_id]
    assert done.status == c.JOB_STATUS_SUCCEEDED, done.error
    assert done.attempts == 2
    assert MessageToDict(done.result.outputs)["tags"] == ["one", "two", "three"]
    assert step_runs(log) == Counter(parent=2, one=1, two=1, three=1)
    steps = children(gw, job_id)
    assert {name: len(jobs) for name, jobs in steps.items()} == {"one": 1, "two": 1, "three": 1}
    assert steps["two"][0].job_id == two.job_id and steps["two"][0].attempts == 1
    check_once(gw.events(job_id))


def workmesh_cli(gw: Gateway, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workmesh.services.cli", *args, "--gateway", f"127.0.0.1:{gw.port}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_step_two_fails_then_retry_runs_only_step_two(cluster, tmp_path):
    log, fail = tmp_path / "runs.log", tmp_path / "fail"
    fail.touch()
    gw = mesh(cluster)
    job_id = submit(gw, "steps-flow", log=log, fail=fail)
    failed = gw.wait_terminal([job_id], timeout=60)[job_id]
    assert failed.status == c.JOB_STATUS_FAILED
    assert failed.error.code == "TEST_FAILURE" and "step two failed" in failed.error.message
    assert step_runs(log) == Counter(parent=1, one=1, two=1)
    fail.unlink()
    retried = workmesh_cli(gw, "retry", job_id)
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.strip() == job_id, "a retry is a new attempt of the same job"
    done = gw.wait_terminal([job_id], timeout=60)[job_id]
    assert done.status == c.JOB_STATUS_SUCCEEDED, done.error
    assert MessageToDict(done.result.outputs)["tags"] == ["one", "two", "three"]
    assert step_runs(log) == Counter(parent=2, one=1, two=2, three=1), "only the failed step ran again"
    steps = children(gw, job_id)
    assert [j.status for j in steps["two"]] == [c.JOB_STATUS_FAILED, c.JOB_STATUS_SUCCEEDED]
    assert len(steps["one"]) == 1 and len(steps["three"]) == 1
    # One job, its attempts both listed, its events numbered on through the retry.
    assert [(a.attempt, a.outcome) for a in done.attempt_history] == [(1, "FAILED"), (2, "SUCCEEDED")]
    events = gw.events(job_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    ends = [(e.status.status, e.status.reason.split(":")[0]) for e in events if e.WhichOneof("payload") == "status"]
    assert ends.index((c.JOB_STATUS_QUEUED, "RETRIED")) > [s for s, _ in ends].index(c.JOB_STATUS_FAILED)
    assert ends[-1][0] == c.JOB_STATUS_SUCCEEDED
    # A succeeded job is not retried.
    again = workmesh_cli(gw, "retry", job_id)
    assert again.returncode != 0 and "FAILED_PRECONDITION" in again.stderr and "SUCCEEDED" in again.stderr
    assert gw.job(job_id).last_seq == events[-1].seq


def test_cancel_of_the_parent_cancels_its_running_step(cluster, tmp_path):
    log, hold = tmp_path / "runs.log", tmp_path / "hold"
    gw = mesh(cluster)
    job_id = submit(gw, "steps-flow", log=log, hold=hold)
    two = wait_step_running(gw, job_id, "two", log)
    gw.stub.CancelJob(g.CancelJobRequest(job_id=job_id, reason="test"), timeout=30)
    ended = gw.wait_terminal([job_id, two.job_id], timeout=60)
    assert ended[job_id].status == c.JOB_STATUS_CANCELLED
    assert ended[two.job_id].status == c.JOB_STATUS_CANCELLED
    steps = children(gw, job_id)
    assert set(steps) == {"one", "two"}, "no step starts after the cancel"
    assert steps["one"][0].status == c.JOB_STATUS_SUCCEEDED
    assert step_runs(log) == Counter(parent=1, one=1, two=1)


def test_step_name_reused_with_other_params_is_refused(cluster, tmp_path):
    log = tmp_path / "runs.log"
    gw = mesh(cluster)
    job_id = submit(gw, "steps-reuse", log=log)
    done = gw.wait_terminal([job_id], timeout=60)[job_id]
    assert done.status == c.JOB_STATUS_SUCCEEDED, done.error
    outputs = MessageToDict(done.result.outputs)
    assert outputs["code"] == "FAILED_PRECONDITION", outputs
    assert "'x'" in outputs["message"] and "other params" in outputs["message"]
    assert step_runs(log) == Counter(a=1), "the second call ran nothing"


def test_gateway_restart_while_step_two_runs(cluster, tmp_path):
    log, hold = tmp_path / "runs.log", tmp_path / "hold"
    gw = mesh(cluster)
    job_id = submit(gw, "steps-flow", log=log, hold=hold)
    wait_step_running(gw, job_id, "two", log)
    cluster.kill(gw.proc)
    gw.close()
    restarted = cluster.gateway(port=gw.port)  # same port: same replica id, same data dir
    restarted.wait_types("steps-record", 1)
    hold.touch()
    done = restarted.wait_terminal([job_id], timeout=90)[job_id]
    assert done.status == c.JOB_STATUS_SUCCEEDED, done.error
    assert done.attempts == 1, "the parent was followed again on its worker, not started again"
    assert step_runs(log) == Counter(parent=1, one=1, two=1, three=1)
    steps = children(restarted, job_id)
    assert {name: len(jobs) for name, jobs in steps.items()} == {"one": 1, "two": 1, "three": 1}
    check_once(restarted.events(job_id))


def test_the_parents_progress_rolls_up_its_steps(cluster, tmp_path):
    log, hold = tmp_path / "runs.log", tmp_path / "hold"
    gw = mesh(cluster)
    job_id = submit(gw, "steps-weighted", log=log, hold=hold)
    # big (weight 3) done, small (weight 1) half way: (3 * 1.0 + 1 * 0.5) / 4.
    rolled = eventually(lambda: (p := gw.job(job_id).progress).fraction == 0.875 and p, timeout=60, interval=0.05)
    assert rolled.message == "steps: 1 of 2 done; running: small"
    hold.touch()
    done = gw.wait_terminal([job_id], timeout=60)[job_id]
    assert done.status == c.JOB_STATUS_SUCCEEDED, done.error
    events = gw.events(job_id)
    shown = [(e.progress.fraction, e.progress.message) for e in events if e.WhichOneof("payload") == "progress"]
    assert (0.875, "steps: 1 of 2 done; running: small") in shown, shown
    assert all(0.0 <= f <= 1.0 for f, _ in shown)
    # The job ended right after its last step: the roll-up still due goes out with its end
    # (before it, the finished job kept "steps: 1 of 2 done; running: small").
    assert (done.progress.fraction, done.progress.message) == (1.0, "steps: 2 of 2 done"), done.progress
    assert shown[-1] == (1.0, "steps: 2 of 2 done"), shown
    assert events[-1].status.status == c.JOB_STATUS_SUCCEEDED


def test_a_parents_own_progress_after_its_last_step_is_its_last_word(cluster, tmp_path):
    gw = mesh(cluster)
    job_id = submit(gw, "steps-last-word", log=tmp_path / "runs.log")
    done = gw.wait_terminal([job_id], timeout=60)[job_id]
    assert done.status == c.JOB_STATUS_SUCCEEDED, done.error
    # Reported after the step ended: the latest word, not replaced by a roll-up of the step.
    assert (done.progress.fraction, done.progress.message) == (1.0, "compared 1 variation"), done.progress
    events = gw.events(job_id)
    shown = [e.progress.message for e in events if e.WhichOneof("payload") == "progress"]
    assert shown[-1] == "compared 1 variation", shown
