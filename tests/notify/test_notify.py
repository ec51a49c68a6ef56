"""Notifications end to end in one process: a real gateway (SQLite job store, the default) with
real workers, delivering to a real local HTTP receiver and a real aiosmtpd server."""

from __future__ import annotations

import contextlib
import email
import time

import grpc
import pytest

from tests.gateway.mesh import Mesh, value
from tests.notify.support import SmtpServer, receiver, self_signed
from tests.support import always_async, eventually_async, free_port, run
from workmesh.services.gateway.notify import NotifyConfig, SmtpConfig
from workmesh.services.gateway.store import NotifyTarget
from workmesh.services.gateway.store.sql._store import SqlJobStore
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g
from workmesh.workers.examples.basic import echo, fail

SECRET = "test-secret"
FAST = {"backoff": 0.05, "backoff_max": 0.2, "poll": 0.05, "timeout": 2.0}


@contextlib.asynccontextmanager
async def mesh(tmp_path, **notify):
    store = SqlJobStore(f"sqlite:///{tmp_path}/jobs.db", exclusive=True)
    config = NotifyConfig(**{"secret": SECRET, **FAST, **notify})
    try:
        async with Mesh(store=store, notify=config) as started:
            await started.add_worker([echo, fail])
            await started.wait_instances("echo", 1)
            await started.wait_instances("fail", 1)
            yield started
    finally:
        await store.close()


def request(
    workflow_type: str = "echo", webhooks=(), emails=(), tenant: str = "", notify: bool = True, **params
) -> g.SubmitJobRequest:
    req = g.SubmitJobRequest(
        workflow_type=workflow_type, tenant=tenant, params={k: value(v) for k, v in params.items()}
    )
    if notify:
        req.notify.CopyFrom(c.Notify(webhooks=list(webhooks), emails=list(emails)))
    return req


async def outcomes(m: Mesh, job_id: str, count: int = 1, timeout: float = 20) -> list[c.NotificationOutcome]:
    """The job's notification events, once there are `count` of them."""

    async def ended():
        job = await m.job(job_id)
        events = [
            e async for e in m.stub.WatchJob(g.WatchJobRequest(job_id=job_id, after_seq=max(job.last_seq - count, 0)))
        ]
        found = [e.notification for e in events if e.WhichOneof("payload") == "notification"]
        return found if len(found) >= count else None

    return await eventually_async(ended, timeout=timeout, interval=0.05)


def test_a_webhook_gets_the_signed_summary_once_and_the_job_records_it(tmp_path) -> None:
    async def body() -> None:
        with receiver() as hook:
            async with mesh(tmp_path) as m:
                job = (await m.stub.SubmitJob(request(webhooks=[hook.url("/done?token=abc")], message="hi"))).job
                [outcome] = await outcomes(m, job.job_id)
                assert outcome.delivered and outcome.attempts == 1 and outcome.channel == "webhook"
                assert outcome.target == f"http://127.0.0.1:{hook.port}"  # the path's token is not shown
                [hit] = hook.hits
                assert hit.path == "/done?token=abc"
                assert hit.signed_with(SECRET) and not hit.signed_with("another secret")
                summary = hit.json
                assert summary["type"] == "job.finished"
                assert summary["deliveryId"] == outcome.delivery_id == hit.headers["X-Workmesh-Delivery"]
                assert hit.headers["Idempotency-Key"] == outcome.delivery_id
                assert summary["job"]["jobId"] == job.job_id
                assert summary["job"]["status"] == "JOB_STATUS_SUCCEEDED"
                assert summary["job"]["result"]["outputs"] == {"message": "hi"}
                # Watching from the start ends at the terminal status; from there, the outcome follows.
                events = await m.follow(job.job_id)
                assert events[-1].status.status == c.JOB_STATUS_SUCCEEDED
                after = [
                    e async for e in m.stub.WatchJob(g.WatchJobRequest(job_id=job.job_id, after_seq=events[-1].seq))
                ]
                assert [e.WhichOneof("payload") for e in after] == ["notification"]

    run(body(), timeout=60)


def test_failed_attempts_are_retried_with_the_same_delivery_id(tmp_path) -> None:
    async def body() -> None:
        with receiver() as hook:
            hook.status = 503
            async with mesh(tmp_path) as m:
                job = (await m.stub.SubmitJob(request("fail", webhooks=[hook.url()]))).job
                await eventually_async(lambda: _true(len(hook.hits) >= 3), timeout=20)
                hook.status = 204
                [outcome] = await outcomes(m, job.job_id)
                assert outcome.delivered and outcome.attempts == len(hook.hits) >= 4
                assert {h.json["deliveryId"] for h in hook.hits} == {outcome.delivery_id}
                assert hook.hits[-1].json["job"]["status"] == "JOB_STATUS_FAILED"

    run(body(), timeout=60)


async def _true(value: bool) -> bool:
    return value


def test_a_dead_endpoint_is_given_up_on_in_bounded_time_and_recorded(tmp_path) -> None:
    async def body() -> None:
        dead = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
        async with mesh(tmp_path, give_up=1.0) as m:
            started = time.monotonic()
            job = (await m.stub.SubmitJob(request(webhooks=[dead]))).job
            [outcome] = await outcomes(m, job.job_id)
            assert not outcome.delivered and outcome.attempts >= 2
            assert "Connect" in outcome.detail, outcome.detail
            # give_up + one attempt's timeout + a poll, with room for a loaded machine.
            assert time.monotonic() - started < 15

    run(body(), timeout=60)


def test_tenant_defaults_apply_unless_the_job_sets_notify(tmp_path) -> None:
    async def body() -> None:
        with receiver() as hook:
            defaults = {"acme": (NotifyTarget("webhook", hook.url("/acme")),)}
            async with mesh(tmp_path, defaults=defaults) as m:
                by_default = (await m.stub.SubmitJob(request(tenant="acme", notify=False))).job
                opted_out = (await m.stub.SubmitJob(request(tenant="acme"))).job  # notify {} set: none
                own = (await m.stub.SubmitJob(request(tenant="acme", webhooks=[hook.url("/own")]))).job
                other = (await m.stub.SubmitJob(request(tenant="other", notify=False))).job
                await outcomes(m, by_default.job_id)
                await outcomes(m, own.job_id)
                for job in (opted_out, other):
                    await m.wait_status(job.job_id, c.JOB_STATUS_SUCCEEDED)
                expected = sorted([("/acme", by_default.job_id), ("/own", own.job_id)])
                # Over several of the notifier's polls (0.05 s) nothing more arrives.
                await always_async(lambda: sorted((h.path, h.json["job"]["jobId"]) for h in hook.hits) == expected)

    run(body(), timeout=60)


@pytest.mark.parametrize(
    ("webhooks", "emails", "field", "rule"),
    [
        (["ftp://example.org/x"], [], "notify.webhooks[0]", "http:// or https://"),
        (["http://ok.example/x", "not a url"], [], "notify.webhooks[1]", "whitespace"),
        (["https:///path"], [], "notify.webhooks[0]", "must name a host"),
        (["http://host:99999/"], [], "notify.webhooks[0]", "not a valid URL"),
        ([], ["nobody"], "notify.emails[0]", "local@domain"),
        ([], ["a@b..c"], "notify.emails[0]", "domain"),
        ([], ["ops@example.org\r\nBcc: x@y.z"], "notify.emails[0]", "part before @"),
        ([f"http://h{i}.example/" for i in range(11)], [], "notify.webhooks", "at most 10"),
    ],
)
def test_bad_targets_are_invalid_argument_naming_the_field_and_nothing_is_stored(
    tmp_path, webhooks, emails, field, rule
) -> None:
    async def body() -> None:
        async with mesh(tmp_path, smtp=SmtpConfig(host="127.0.0.1", port=free_port())) as m:
            before = len((await m.stub.ListJobs(g.ListJobsRequest())).jobs)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await m.stub.SubmitJob(request(webhooks=webhooks, emails=emails))
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert caught.value.details().startswith(f"{field}: "), caught.value.details()
            assert rule in caught.value.details()
            assert len((await m.stub.ListJobs(g.ListJobsRequest())).jobs) == before

    run(body(), timeout=60)


def test_a_channel_the_gateway_lacks_is_failed_precondition(tmp_path) -> None:
    async def body() -> None:
        async with mesh(tmp_path, secret="") as m:  # no secret, no SMTP server
            for req, field in (
                (request(webhooks=["http://example.org/"]), "notify.webhooks"),
                (request(emails=["ops@example.org"]), "notify.emails"),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await m.stub.SubmitJob(req)
                assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
                assert caught.value.details().startswith(field)

    run(body(), timeout=60)


@pytest.mark.parametrize("security", ["none", "starttls", "tls"])
def test_an_email_goes_through_a_real_smtp_server(tmp_path, security) -> None:
    cert = self_signed(tmp_path) if security != "none" else None
    credentials = ("mailer", "s3cret")
    server = SmtpServer(security, cert=cert, credentials=credentials)

    async def body() -> None:
        smtp = SmtpConfig(
            host="127.0.0.1",
            port=server.port,
            security=security,
            username=credentials[0],
            password=credentials[1],
            sender="workmesh@test.example",
            ca_file=str(cert[0]) if cert else "",
        )
        async with mesh(tmp_path, smtp=smtp) as m:
            job = (await m.stub.SubmitJob(request("fail", emails=["ops@example.org"], message="boom"))).job
            [outcome] = await outcomes(m, job.job_id)
            assert outcome.delivered and outcome.channel == "email" and outcome.target == "ops@example.org"
            [mail] = server.mails
            assert mail.sender == "workmesh@test.example" and mail.recipients == ["ops@example.org"]
            parsed = email.message_from_bytes(mail.data)
            assert parsed["Subject"] == f"workmesh job {job.job_id} (fail) FAILED"
            assert parsed["Message-ID"] == f"<{outcome.delivery_id}@workmesh>"
            text = parsed.get_payload()[0].get_payload(decode=True).decode()
            assert "boom" in text
            assert server.logins == ["mailer"]

    try:
        run(body(), timeout=60)
    finally:
        server.close()


def test_a_wrong_smtp_password_is_retried_then_given_up_and_recorded(tmp_path) -> None:
    server = SmtpServer("none", credentials=("mailer", "right"))

    async def body() -> None:
        smtp = SmtpConfig(host="127.0.0.1", port=server.port, security="none", username="mailer", password="wrong")
        async with mesh(tmp_path, smtp=smtp, give_up=0.5) as m:
            job = (await m.stub.SubmitJob(request(emails=["ops@example.org"]))).job
            [outcome] = await outcomes(m, job.job_id)
            assert not outcome.delivered and outcome.detail.startswith("SMTP 535"), outcome.detail
            assert server.mails == []

    try:
        run(body(), timeout=60)
    finally:
        server.close()
