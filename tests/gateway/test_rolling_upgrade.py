"""A rolling upgrade with real processes (issue 13 point 6): a registry, a gateway and ``workmesh
worker`` processes of ``rolling`` 1.0.0 and 2.0.0 (2.0.0 adds ``scale``; tests/gateway/rolling.py).

A stream of jobs is submitted throughout: v1 workers serve; v2 workers start; each v1 worker is
told to stop (SIGTERM) and drains; a v1 worker comes back at the end. No job fails, each one ran
once, on a version that declares its parameters and matches the version it asked for; jobs pinned
to ``^1`` wait QUEUED with the reason on their WatchJob while no v1 instance is left, then run on
the v1 that comes back, or time out in the queue with a clear error.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import urllib.request
from collections import Counter
from pathlib import Path

import grpc
import pytest
from google.protobuf.json_format import MessageToDict
from packaging.specifiers import SpecifierSet

from tests.chaos.support import Cluster, Gateway, check_once
from tests.support import eventually
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

V1, V2 = "tests.gateway.rolling:worker_v1", "tests.gateway.rolling:worker_v2"
DECLARED = {"1.0.0": {"log", "hold", "seconds"}, "2.0.0": {"log", "hold", "seconds", "scale"}}


def request(version: str = "", timeout: float | None = None, **params: object) -> g.SubmitJobRequest:
    values = {
        k: c.ParamValue(int_value=v) if isinstance(v, int) else c.ParamValue(string_value=str(v))
        for k, v in params.items()
    }
    req = g.SubmitJobRequest(workflow_type="rolling", version=version, params=values)
    if timeout is not None:
        req.timeout.FromNanoseconds(int(timeout * 1e9))
    return req


class Stream(threading.Thread):
    """Submits a job every 0.1 s, cycling through the kinds of the current phase; records each
    job's id with what it asked for, and any refused submission."""

    KINDS = {
        "plain": ("", {}),
        "pinned-1": ("^1", {}),
        "scaled": ("", {"scale": 3}),
        "pinned-2": ("^2", {"scale": 2}),
    }

    def __init__(self, gw: Gateway, log: Path) -> None:
        super().__init__(daemon=True)
        self.gw, self.log = gw, log
        self.kinds = ["plain", "pinned-1"]
        self.jobs: list[tuple[str, str, set[str]]] = []  # job id, kind, params given
        self.refused: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        turn = 0
        while not self.halt.wait(0.1):
            kind = self.kinds[turn % len(self.kinds)]
            turn += 1
            version, extra = self.KINDS[kind]
            params = {"log": self.log, "seconds": 0.2 + 0.1 * (turn % 4), **extra}
            try:
                job = self.gw.stub.SubmitJob(request(version, **params), timeout=30).job
            except grpc.RpcError as exc:
                self.refused.append(f"{kind}: {exc.code().name} {exc.details()}")
                continue
            self.jobs.append((job.job_id, kind, set(params)))

    def more(self, count: int) -> None:
        """Until `count` more jobs were submitted."""
        target = len(self.jobs) + count
        eventually(lambda: len(self.jobs) >= target, timeout=60, interval=0.05)

    def stop(self) -> None:
        self.halt.set()
        self.join(30)


def worker(cluster: Cluster, target: str, instance: str):
    env = {
        "CONSUL_HTTP_ADDR": cluster.registry,
        "WORKMESH_WORKER_INSTANCE_ID": instance,
        "WORKMESH_WORKER_DRAIN_GRACE": "60",  # a drain lets running jobs finish
    }
    return cluster.procs.workmesh("worker", target, "--listen", "127.0.0.1:0", env=env, name=instance)


def live(gw: Gateway) -> list[tuple[str, str]]:
    """(version, instance id) of each instance of ``rolling`` the gateway routes to."""
    types = gw.stub.ListWorkflowTypes(g.ListWorkflowTypesRequest(), timeout=30).types
    return sorted((i.version, i.instance_id) for t in types if t.type.name == "rolling" for i in t.instances)


def wait_live(gw: Gateway, *expected: tuple[str, str]) -> None:
    eventually(lambda: live(gw) == sorted(expected), timeout=60, interval=0.05)


def registered(cluster: Cluster) -> set[str]:
    """The service ids the registry lists as passing instances of ``rolling``."""
    url = f"http://{cluster.registry}/v1/health/service/workmesh-wf-rolling?passing=1"
    with urllib.request.urlopen(url, timeout=5) as reply:
        return {entry["Service"]["ID"].rsplit("-", 1)[-1] for entry in json.loads(reply.read())}


def logged(gw: Gateway, job_id: str, text: str) -> str:
    """The first log line of the job's WatchJob that contains `text` (the job need not end)."""
    call = gw.stub.WatchJob(g.WatchJobRequest(job_id=job_id), timeout=60)
    try:
        for event in call:
            if event.WhichOneof("payload") == "log" and text in event.log.message:
                return event.log.message
    finally:
        call.cancel()
    raise AssertionError(f"job {job_id} ended without a log line containing {text!r}")


def runs(log: Path) -> dict[str, list[tuple[str, str]]]:
    """Each job's runs: (instance, version), from the file the handlers append to."""
    seen: dict[str, list[tuple[str, str]]] = {}
    for line in log.read_text().splitlines():
        job_id, _attempt, instance, version = line.split()
        seen.setdefault(job_id, []).append((instance, version))
    return seen


def test_rolling_upgrade_with_jobs_submitted_throughout(cluster, tmp_path):
    log, hold = tmp_path / "runs.log", tmp_path / "hold"
    gw = cluster.gateway()
    v1 = {name: worker(cluster, V1, name) for name in ("v1a", "v1b")}
    wait_live(gw, ("1.0.0", "v1a"), ("1.0.0", "v1b"))
    stream = Stream(gw, log)
    stream.start()
    try:
        stream.more(10)
        # Only 1.0.0 is live: the new parameter is refused, naming it; nothing is stored.
        with pytest.raises(grpc.RpcError) as refused:
            gw.stub.SubmitJob(request(log=log, scale=2), timeout=30)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "params.scale" in refused.value.details()

        for name in ("v2a", "v2b"):
            worker(cluster, V2, name)
        wait_live(gw, ("1.0.0", "v1a"), ("1.0.0", "v1b"), ("2.0.0", "v2a"), ("2.0.0", "v2b"))
        stream.kinds = list(Stream.KINDS)
        stream.more(20)

        # v1a drains while the stream goes on.
        assert cluster.procs.stop(v1.pop("v1a"), timeout=60) == 0
        wait_live(gw, ("1.0.0", "v1b"), ("2.0.0", "v2a"), ("2.0.0", "v2b"))
        stream.more(10)

        # v1b, the last 1.x instance, is told to stop while two jobs run on it.
        held = [gw.stub.SubmitJob(request("^1", log=log, hold=hold), timeout=30).job.job_id for _ in range(2)]
        for job_id in held:
            assert gw.wait_status(job_id, c.JOB_STATUS_RUNNING, timeout=60).instance_id == "v1b"
        last = v1.pop("v1b")
        os.kill(last.pid, signal.SIGTERM)
        eventually(lambda: "v1b" not in registered(cluster), timeout=30, interval=0.05)
        wait_live(gw, ("2.0.0", "v2a"), ("2.0.0", "v2b"))
        assert last.poll() is None, "the draining worker still runs its jobs"
        assert all(gw.job(job_id).status == c.JOB_STATUS_RUNNING for job_id in held)
        hold.touch()
        assert last.wait(60) == 0
        for job_id in held:  # finished where they ran: not cancelled, not moved
            done = gw.wait_status(job_id, c.JOB_STATUS_SUCCEEDED, timeout=30)
            assert (done.instance_id, done.attempts) == ("v1b", 1)
            check_once(gw.events(job_id))
        stream.more(10)

        # No 1.x instance is left: a job pinned to ^1 waits, with the reason, or times out.
        waiting = gw.stub.SubmitJob(request("^1", log=log), timeout=30).job.job_id
        late = gw.stub.SubmitJob(request("^1", timeout=1.5, log=log), timeout=30).job.job_id
        reason = logged(gw, waiting, "waiting:")
        assert reason == (
            "waiting: no live instance of 'rolling' serves a version matching '<2,>=1' (live versions: 2.0.0)"
        )
        queued = gw.job(waiting)  # GetJob says it too (workmesh job shows it)
        assert queued.status == c.JOB_STATUS_QUEUED and queued.queue.waiting == reason.removeprefix("waiting: ")
        timed_out = gw.wait_status(late, c.JOB_STATUS_TIMED_OUT, timeout=30)
        assert timed_out.attempts == 0 and timed_out.error.code == "TIMED_OUT", timed_out.error
        assert "in the queue" in timed_out.error.message and "<2,>=1" in timed_out.error.message
        assert "live versions: 2.0.0" in timed_out.error.message, timed_out.error.message
        assert gw.job(waiting).status == c.JOB_STATUS_QUEUED
        stream.more(10)
    finally:
        stream.stop()

    # A 1.x instance comes back: the jobs that wait for it run there.
    worker(cluster, V1, "v1c")
    assert gw.wait_status(waiting, c.JOB_STATUS_SUCCEEDED, timeout=60).instance_id == "v1c"
    ended = gw.wait_terminal([job_id for job_id, _, _ in stream.jobs], timeout=120)

    assert stream.refused == [], stream.refused
    failed = {
        job_id: (c.JobStatus.Name(j.status), j.error.message)
        for job_id, j in ended.items()
        if j.status != c.JOB_STATUS_SUCCEEDED
    }
    assert failed == {}, failed
    ran = runs(log)
    assert {job_id: len(r) for job_id, r in ran.items() if len(r) != 1} == {}, "a job ran twice"
    by_version: Counter[str] = Counter()
    came_back = 0
    for job_id, kind, given in stream.jobs:
        job = ended[job_id]
        ((instance, version),) = ran[job_id]
        outputs = MessageToDict(job.result.outputs)
        assert (job.instance_id, outputs["version"]) == (instance, version)
        assert given <= DECLARED[version], (kind, given, version)  # the version declares its params
        assert SpecifierSet(job.version).contains(version), (kind, job.version, version)
        if "scale" in given:
            assert (version, outputs["scale"]) == ("2.0.0", float(Stream.KINDS[kind][1]["scale"]))
        by_version[f"{kind} {version}"] += 1
        came_back += instance == "v1c"
    assert by_version["pinned-1 1.0.0"] and by_version["pinned-2 2.0.0"] and by_version["scaled 2.0.0"], by_version
    assert not by_version["pinned-1 2.0.0"] and not by_version["scaled 1.0.0"], by_version
    assert came_back, "the ^1 jobs of the stream that waited ran on the v1 that came back"
    assert {v for v, _ in live(gw)} == {"1.0.0", "2.0.0"}
