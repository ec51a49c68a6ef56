"""The audit log end to end, with real processes: a mesh with authentication on (``workmesh dev
--auth``'s keys), jobs submitted and cancelled and a token made through the gateway, read back
with ``workmesh audit``; and ``workmesh dev --auth`` itself started as a process whose printed
token works."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import grpc
import jwt
import pytest

from tests.support import eventually
from workmesh.services.cli._devauth import dev_auth_env, dev_token
from workmesh.services.core.children import die_with_parent, spawn
from workmesh.services.devmesh import DevMesh, free_port
from workmesh.services.gateway.store.sql._store import SqlJobStore
from workmesh.v1 import admin_pb2, admin_pb2_grpc, common_pb2, gateway_pb2, gateway_pb2_grpc

pytestmark = pytest.mark.e2e

BASIC = "workmesh.workers.examples.basic:worker"


def cli(*args: str, token: str = "") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "WORKMESH_TOKEN"}
    env["COLUMNS"] = "250"  # tables unwrapped
    return subprocess.run(
        [sys.executable, "-m", "workmesh.services.cli", *args, *(("--token", token) if token else ())],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def jwt_for(secret: str, tenant: str, subject: str, *scopes: str) -> str:
    now = int(time.time())
    claims = {"sub": subject, "tenant": tenant, "scope": " ".join(scopes), "iat": now, "exp": now + 600}
    return jwt.encode(claims, secret, algorithm="HS256")


def bearer(token: str):
    return (("authorization", f"Bearer {token}"),)


def test_actions_are_recorded_with_their_caller_and_read_only_with_the_scope(tmp_path):
    env = dev_auth_env(tmp_path)
    secret = env["WORKMESH_JWT_SECRET"]
    alice = jwt_for(secret, "acme", "alice", "types:read", "jobs:submit", "jobs:read", "jobs:manage", "tokens:admin")
    bob = jwt_for(secret, "acme", "bob", "types:read", "jobs:submit", "jobs:read")
    root = jwt_for(secret, "ops", "root", "admin")
    with DevMesh(
        workers=(BASIC,),
        results=False,
        http_port=None,
        data_dir=tmp_path,
        log_dir=tmp_path,
        env=env,
        token=dev_token(tmp_path),
    ) as mesh:
        gw = ("--gateway", mesh.gateway_address)
        with grpc.insecure_channel(mesh.gateway_address) as channel:
            stub = gateway_pb2_grpc.GatewayStub(channel)
            sleep = gateway_pb2.SubmitJobRequest(
                workflow_type="sleep",
                params={"seconds": common_pb2.ParamValue(float_value=60), "steps": common_pb2.ParamValue(int_value=1)},
            )
            job = stub.SubmitJob(sleep, metadata=bearer(alice), timeout=30).job.job_id
            stub.CancelJob(gateway_pb2.CancelJobRequest(job_id=job, reason="audit test"), metadata=bearer(alice))
            other = stub.SubmitJob(sleep, metadata=bearer(bob), timeout=30).job.job_id
            stub.CancelJob(gateway_pb2.CancelJobRequest(job_id=other), metadata=bearer(bob))
            made = admin_pb2_grpc.TokenAdminStub(channel).CreateToken(
                admin_pb2.CreateTokenRequest(name="ci", scopes=["jobs:read"]), metadata=bearer(alice)
            )
            eventually(  # a running job ends CANCELLED once its worker stopped it: then it may be retried
                lambda: (
                    stub.GetJob(gateway_pb2.GetJobRequest(job_id=job), metadata=bearer(alice)).status
                    == common_pb2.JOB_STATUS_CANCELLED
                ),
                timeout=30,
            )
            retried = stub.RetryJob(gateway_pb2.RetryJobRequest(job_id=job), metadata=bearer(alice)).job.job_id
            assert retried == job  # a new attempt of the same job
            stub.CancelJob(gateway_pb2.CancelJobRequest(job_id=job), metadata=bearer(alice))
            stub.DeleteJob(gateway_pb2.DeleteJobRequest(job_id=job), metadata=bearer(alice))
            admin_pb2_grpc.TokenAdminStub(channel).RevokeToken(
                admin_pb2.RevokeTokenRequest(token_id=made.info.token_id), metadata=bearer(alice)
            )
            audit = admin_pb2_grpc.AuditStub(channel)
            with pytest.raises(grpc.RpcError) as denied:
                audit.ListAudit(admin_pb2.ListAuditRequest(), metadata=bearer(bob))
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "tokens:admin" in denied.value.details()
            with pytest.raises(grpc.RpcError) as elsewhere:
                audit.ListAudit(admin_pb2.ListAuditRequest(tenant="ops"), metadata=bearer(alice))
            assert elsewhere.value.code() == grpc.StatusCode.PERMISSION_DENIED

        read = cli("audit", *gw, "--json", "--since", "1h", token=alice)
        assert read.returncode == 0, read.stderr
        entries = json.loads(read.stdout)
        seen = [(e["action"], e["target"], e.get("subject", "")) for e in entries]
        assert seen == [
            ("submit", job, "alice"),
            ("cancel", job, "alice"),
            ("submit", other, "bob"),
            ("cancel", other, "bob"),
            ("token.create", made.info.token_id, "alice"),
            ("retry", job, "alice"),
            ("cancel", job, "alice"),
            ("delete", job, "alice"),  # the job is gone, its entries stay
            ("token.revoke", made.info.token_id, "alice"),
        ]
        assert all(e["tenant"] == "acme" and e["peer"].startswith("ipv4:127.0.0.1:") for e in entries)
        assert entries[1]["detail"] == "audit test" and entries[5]["detail"].endswith(" after CANCELLED")
        assert "'ci' of tenant 'acme'" in entries[4]["detail"]
        assert made.token not in read.stdout
        # bob lacks the scope: the CLI says which one.
        refused = cli("audit", *gw, token=bob)
        assert refused.returncode == 1 and "PERMISSION_DENIED" in refused.stderr and "tokens:admin" in refused.stderr
        # An admin reads every tenant; a time after the last entry gives nothing.
        everything = json.loads(cli("audit", *gw, "--json", token=root).stdout)
        assert [e["target"] for e in everything] == [e["target"] for e in entries]
        later = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).isoformat()
        assert json.loads(cli("audit", *gw, "--json", "--since", later, token=root).stdout) == []
        table = cli("audit", *gw, token=alice)
        assert table.returncode == 0 and "token.create" in table.stdout and made.info.token_id in table.stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_group(proc: subprocess.Popen, grace: float = 60.0) -> None:
    """Stop `workmesh dev` and its mesh as Ctrl-C does: one SIGTERM to the process group it leads
    (a second SIGTERM to `workmesh dev` would interrupt its own stopping of the children), then
    SIGKILL to the group for anything still there after `grace` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # children that outlived it, if any
        proc.wait(5)


# Two `workmesh dev` meshes (4 processes each) one after the other and 4 CLI processes: at load 12
# on 2 cores each mesh took 34-36 s to be ready and each CLI call 5-9 s, 120 s in all, the default limit.
@pytest.mark.timeout(360)
def test_workmesh_dev_says_authentication_is_off_and_dev_auth_prints_a_working_token(tmp_path):
    ports = [str(free_port()) for _ in range(3)]
    args = ["--registry-port", ports[0], "--gateway-port", ports[1], "--results-port", ports[2], "--http-port", "0"]
    for auth in (False, True):
        data_dir = tmp_path / ("on" if auth else "off")
        proc = spawn(  # SIGTERM from the kernel if this test process dies: no mesh left behind
            [*die_with_parent(signal.SIGTERM), sys.executable, "-m", "workmesh.services.cli", "dev", *args]
            + ["--worker", BASIC]
            + ["--data-dir", str(data_dir)]
            + (["--auth"] if auth else []),
            stdout=subprocess.PIPE,
            stderr=(data_dir.parent / f"dev-{'on' if auth else 'off'}.err").open("w"),  # shown on failure
            text=True,
            start_new_session=True,
        )
        lines: list[str] = []
        ready = threading.Event()

        def read(proc=proc, lines=lines, ready=ready) -> None:
            for line in proc.stdout:  # type: ignore[union-attr]
                lines.append(line)
                if "Ctrl-C stops everything" in line:
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        try:
            # `ready` is also set when its output ends (it exited): then the start-up line is missing.
            assert ready.wait(120) and proc.poll() is None, "".join(lines)
            output = "".join(lines)
            errors = (data_dir.parent / f"dev-{'on' if auth else 'off'}.err").read_text()
            assert "Ctrl-C stops everything" in output, output + errors
            gw = ("--gateway", f"127.0.0.1:{ports[1]}")
            if not auth:
                assert "authentication is OFF" in output and "--auth" in output
                # Two SIGTERMs to `workmesh dev` alone: the second does not cut its stopping short.
                children = [int(pid) for pid in re.findall(r" pid (\d+)", output)]
                assert len(children) == 4  # registry, results, gateway, worker
                os.kill(proc.pid, signal.SIGTERM)
                time.sleep(0.5)  # (not a timing assert: only that the second signal comes mid-stop)
                os.kill(proc.pid, signal.SIGTERM)
                assert proc.wait(90) == 0
                assert [pid for pid in children if _alive(pid)] == []
                continue
            token = re.search(r"export WORKMESH_TOKEN=(\S+)", output).group(1)
            assert "authentication is ON" in output and (data_dir / "auth-keys.json").stat().st_mode & 0o077 == 0
            assert cli("types", *gw, token=token).returncode == 0
            anonymous = cli("jobs", *gw)
            assert anonymous.returncode == 1 and "UNAUTHENTICATED" in anonymous.stderr
            submitted = cli("submit", *gw, "echo", "-p", "message=hi", "--json", token=token)
            assert submitted.returncode == 0, submitted.stderr
            audit = json.loads(cli("audit", *gw, "--json", token=token).stdout)
            assert [(e["action"], e["tenant"], e["subject"]) for e in audit] == [("submit", "local", "dev")]
        finally:
            stop_group(proc)


def test_a_token_made_straight_in_the_job_store_is_recorded_too(tmp_path):
    store_dir = ("--data-dir", str(tmp_path))
    made = cli("token", "create", *store_dir, "--tenant", "acme", "--name", "root", "--scopes", "admin")
    assert made.returncode == 0, made.stderr
    listed = json.loads(cli("token", "list", *store_dir, "--json").stdout)

    async def entries():
        store = SqlJobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
        try:
            return await store.list_audit()
        finally:
            await store.close()

    (entry,) = asyncio.run(entries())
    assert (entry.action, entry.target) == ("token.create", listed[0]["token_id"])
    assert entry.subject.startswith("os:") and entry.peer.startswith("job store directly")
    assert made.stdout.strip() not in entry.detail
