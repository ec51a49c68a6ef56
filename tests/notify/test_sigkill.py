"""A gateway SIGKILLed between a job's end and its notification's delivery: the restarted gateway
delivers it from the job store's outbox — with the same delivery id, signed, recorded once.

Real processes (registry, gateway, worker) and a real HTTP receiver in this process; the job
store is the default SQLite file, or PostgreSQL.
"""

from __future__ import annotations

import pytest

from tests.chaos.support import Gateway
from tests.notify.support import receiver
from tests.support import eventually
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g

SECRET = "kill-test-secret"
NOTIFY_ENV = {
    "WORKMESH_NOTIFY_SECRET": SECRET,
    "WORKMESH_NOTIFY_POLL": "0.1",
    "WORKMESH_NOTIFY_BACKOFF": "0.1",
    "WORKMESH_NOTIFY_BACKOFF_MAX": "0.3",
    "WORKMESH_NOTIFY_TIMEOUT": "2",
}
# A gateway that would not look at its outbox for an hour: the job ends, nothing is delivered.
ASLEEP_ENV = {**NOTIFY_ENV, "WORKMESH_NOTIFY_POLL": "3600"}


def submit(gw: Gateway, url: str) -> str:
    request = g.SubmitJobRequest(
        workflow_type="chaos-record",
        params={"seconds": c.ParamValue(string_value="0.2"), "steps": c.ParamValue(string_value="2")},
    )
    request.notify.webhooks.append(url)
    return gw.stub.SubmitJob(request, timeout=30).job.job_id


def notifications(gw: Gateway, job_id: str) -> list[c.NotificationOutcome]:
    job = gw.job(job_id)
    terminal = [e for e in gw.events(job_id) if e.WhichOneof("payload") == "status"][-1].seq
    return (
        [e.notification for e in gw.events(job_id, after_seq=terminal) if e.WhichOneof("payload") == "notification"]
        if job.last_seq > terminal
        else []
    )


def restart_and_deliver(cluster, gw: Gateway, hook, job_id: str, database_url: str) -> c.NotificationOutcome:
    cluster.kill(gw.proc)
    gw.close()
    hook.status = 200
    restarted = cluster.gateway(port=gw.port, env=NOTIFY_ENV, database_url=database_url)
    [outcome] = eventually(lambda: notifications(restarted, job_id), timeout=60, interval=0.1)
    assert outcome.delivered
    delivered = [h for h in hook.hits if h.json["deliveryId"] == outcome.delivery_id]
    assert len(delivered) == len(hook.hits)  # every attempt, before and after the kill: one delivery id
    # Attempts the store counted; one in flight when the gateway died reached the receiver
    # uncounted (at least once).
    assert 1 <= outcome.attempts <= len(hook.hits)
    last = hook.hits[-1]
    assert last.signed_with(SECRET)
    assert last.json["job"]["jobId"] == job_id and last.json["job"]["status"] == "JOB_STATUS_SUCCEEDED"
    return outcome


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_sigkill_after_the_job_ended_before_any_attempt(cluster, request, store) -> None:
    url = request.getfixturevalue("postgres_url") if store == "postgres" else ""
    with receiver() as hook:
        gw = cluster.gateway(env=ASLEEP_ENV, database_url=url)
        cluster.worker()
        gw.wait_types("chaos-record", 1)
        job_id = submit(gw, hook.url())
        gw.wait_status(job_id, c.JOB_STATUS_SUCCEEDED)
        assert hook.hits == []  # ended, not yet told
        outcome = restart_and_deliver(cluster, gw, hook, job_id, url)
        assert outcome.attempts == 1


def test_sigkill_between_failed_attempts_keeps_the_delivery_and_its_id(cluster) -> None:
    with receiver() as hook:
        hook.status = 503
        gw = cluster.gateway(env=NOTIFY_ENV)
        cluster.worker()
        gw.wait_types("chaos-record", 1)
        job_id = submit(gw, hook.url())
        eventually(lambda: len(hook.hits) >= 2, timeout=30)  # the job ended; the receiver said 503 twice
        outcome = restart_and_deliver(cluster, gw, hook, job_id, "")
        # The first 503 was counted before a second attempt could start (the retry is stored
        # first); the second may have been in flight at the kill, then it is not counted.
        assert outcome.attempts >= 2
