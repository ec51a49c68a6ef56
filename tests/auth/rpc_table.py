"""The access table of every RPC of every service in protos/ (walked by test_rpc_table.py).

One row per RPC, keyed by its full method name (``/workmesh.v1.Service/Method``): how to call it
on a target, which target (a job of alice's, or a fresh one for a caller the row lets through
when the call changes it), and the status each caller gets. The callers are the issue's: no
token, another tenant, the same tenant without a grant, a grantee (read, manage, and of a
tenant-wide label share), without the scope, with the scope (jobs:manage, tokens:admin, admin)
— and, for the RPCs authenticated by the gateway's capabilities instead of a caller token (the
worker's series writes, its steps, the gateway's calls to the results service), the right
capability and one of another job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np

from tests.auth.keys import hs256
from workmesh.v1 import admin_pb2 as a
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g
from workmesh.v1 import results_pb2 as r
from workmesh.v1 import sharing_pb2 as s

OK, UNAUTH, DENIED, MISSING = (
    grpc.StatusCode.OK,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND,
)
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
USER = "types:read jobs:submit jobs:read series:read"
TOKENS = {
    "nobody": None,
    "owner": hs256(sub="alice", tenant="acme", scope=USER),
    "other_tenant": hs256(sub="carol", tenant="globex", scope=USER),
    "same_tenant": hs256(sub="bob", tenant="acme", scope=USER),
    "grantee": hs256(sub="erin", tenant="acme", scope=USER),  # alice shares her table jobs (read)
    "manage_grantee": hs256(sub="fay", tenant="acme", scope=USER),  # alice shares them read + manage
    "tenant_grantee": hs256(sub="gus", tenant="acme", scope=USER),  # ops shares the label tenant-wide
    "no_scope": hs256(sub="alice", tenant="acme", scope=""),  # the owner herself, without scopes
    "other_no_scope": hs256(sub="carol", tenant="globex", scope=""),
    "manager": hs256(sub="ops", tenant="acme", scope=USER + " jobs:manage"),
    "tokens_admin": hs256(sub="keys", tenant="acme", scope="tokens:admin"),
    "admin": hs256(sub="root", tenant="platform", scope="admin"),
}
CAPS = ("capability", "other_capability")  # the row's capability of the target job; of bob's job
CALLERS = (*TOKENS, *CAPS)
SCOPELESS = ("no_scope", "other_no_scope", "tokens_admin")  # lack the scope of a job RPC
LABEL = {"table": "walk"}  # on alice's jobs; shared with erin (read) by label


@dataclass
class Row:
    """One RPC: `call(ctx, target, metadata)` makes it (raising grpc.RpcError when refused).

    Attributes:
        expect: caller → status.
        scope: the scope a caller without it is told it needs (PERMISSION_DENIED names it).
        rule: what the other PERMISSION_DENIED answers name (the rule, or the way to access).
        target: the target of the callers the row refuses, and of all when nothing changes.
        fresh: a new target for each caller the row lets through (a call that changes it).
        job: the target is a job id (the row is walked with an unknown job too).
        op: the capability the capability callers carry (write, delete, grant, read).
    """

    call: Callable[[Any, str, list], Any]
    expect: dict[str, grpc.StatusCode]
    scope: str
    rule: str = "'jobs:manage'"
    target: Callable[[Any], str] = lambda ctx: ctx.job
    fresh: Callable[[Any], str] | None = None
    job: bool = True
    op: str = "write"


def _statuses(base: dict[str, grpc.StatusCode], **changes: grpc.StatusCode) -> dict[str, grpc.StatusCode]:
    return {**base, **changes}


# A token RPC on alice's job: capabilities are no caller token (UNAUTHENTICATED).
READ_JOB = {
    "nobody": UNAUTH,
    "owner": OK,
    "other_tenant": MISSING,
    "same_tenant": DENIED,
    "grantee": OK,
    "manage_grantee": OK,
    "tenant_grantee": OK,
    "no_scope": DENIED,
    "other_no_scope": DENIED,
    "manager": OK,
    "tokens_admin": DENIED,
    "admin": OK,
    "capability": UNAUTH,
    "other_capability": UNAUTH,
}
MANAGE_JOB = _statuses(READ_JOB, grantee=DENIED, tenant_grantee=DENIED)  # read shares: no cancel, delete, retry
SHARE_JOB = _statuses(MANAGE_JOB, manage_grantee=DENIED)  # the owner, jobs:manage, admin; never a grantee
# A token RPC that names no job.
NO_JOB = _statuses(
    READ_JOB, other_tenant=OK, same_tenant=OK, grantee=OK, no_scope=DENIED, other_no_scope=DENIED, tokens_admin=DENIED
)
ADMIN_ONLY = {
    **{name: DENIED for name in TOKENS},
    "nobody": UNAUTH,
    "admin": OK,
    "capability": UNAUTH,
    "other_capability": UNAUTH,
}
TOKENS_ADMIN = _statuses(ADMIN_ONLY, tokens_admin=OK)
# Authenticated by a capability, not a token: tokens are no capability (UNAUTHENTICATED).
CAPABILITY_ONLY = {**{name: UNAUTH for name in TOKENS}, "capability": OK, "other_capability": DENIED}
# Series reads: a caller token with series:read, or the gateway's read capability of the jobs.
READ_SERIES = _statuses(READ_JOB, capability=OK, other_capability=DENIED)


def _first(stream) -> Any:
    for item in stream:
        stream.cancel()
        return item
    return None


def _chunk(job_id: str) -> r.WriteSeriesRequest:
    return r.WriteSeriesRequest(
        chunk=r.SeriesChunk(
            key=r.SeriesKey(job_id=job_id, measurement="probe"),
            time_unit=r.TIME_UNIT_SECONDS,
            timestamps=np.arange(3, dtype="<i8").tobytes(),
            fields=[r.FieldColumn(name="v", values=np.ones(3, dtype="<f8").tobytes())],
        ),
        flush=True,
    )


def _step(ctx, job: str, md: list) -> Any:
    request = g.RunStepRequest(
        parent_job_id=job,
        parent_attempt=1,
        step_name="probe",
        workflow_type="series-async",
        params={"steps": c.ParamValue(int_value=4)},
    )
    return ctx.gateway.RunStep(request, timeout=60, metadata=md)


class _Refused(grpc.RpcError):
    """A RunSteps reply's status, raised as the RpcError RunStep would have raised."""

    def __init__(self, code: int, details: str) -> None:
        super().__init__(details)
        self._code = next(c for c in grpc.StatusCode if c.value[0] == code)
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def _steps(ctx, job: str, md: list) -> Any:
    request = g.RunStepRequest(
        parent_job_id=job,
        parent_attempt=1,
        step_name="probe-stream",
        workflow_type="series-async",
        params={"steps": c.ParamValue(int_value=4)},
        call_id=1,
    )
    replies = ctx.gateway.RunSteps(iter([request]), timeout=60, metadata=md)
    try:
        for reply in replies:
            if reply.status_code:
                raise _Refused(reply.status_code, reply.status_message)
            return reply.response
    finally:
        replies.cancel()
    raise AssertionError("RunSteps ended without answering its request")


def _series_job(steps: int = 4, **flags: bool) -> g.SubmitJobRequest:
    params = {"steps": c.ParamValue(int_value=steps)}
    params.update({k: c.ParamValue(bool_value=v) for k, v in flags.items()})
    return g.SubmitJobRequest(workflow_type="series-async", params=params, labels=LABEL)


def _gw(name: str, request_of: Callable[[str], Any], **kw) -> Callable[[Any, str, list], Any]:
    return lambda ctx, target, md: getattr(ctx.gateway, name)(request_of(target), timeout=30, metadata=md, **kw)


def _stub(stub: str, name: str, request_of: Callable[[str], Any]) -> Callable[[Any, str, list], Any]:
    return lambda ctx, target, md: getattr(getattr(ctx, stub), name)(request_of(target), timeout=30, metadata=md)


ROWS: dict[str, Row] = {
    # ---- workmesh.v1.Gateway
    "/workmesh.v1.Gateway/ListWorkflowTypes": Row(
        _gw("ListWorkflowTypes", lambda _: g.ListWorkflowTypesRequest()), NO_JOB, "'types:read'", job=False
    ),
    "/workmesh.v1.Gateway/WatchWorkflowTypes": Row(
        lambda ctx, _, md: _first(ctx.gateway.WatchWorkflowTypes(g.WatchWorkflowTypesRequest(), metadata=md)),
        NO_JOB,
        "'types:read'",
        job=False,
    ),
    "/workmesh.v1.Gateway/SubmitJob": Row(
        _gw("SubmitJob", lambda _: _series_job()), NO_JOB, "'jobs:submit'", job=False
    ),
    "/workmesh.v1.Gateway/WatchJob": Row(
        lambda ctx, job, md: list(ctx.gateway.WatchJob(g.WatchJobRequest(job_id=job), timeout=30, metadata=md)),
        READ_JOB,
        "'jobs:read'",
    ),
    "/workmesh.v1.Gateway/GetJob": Row(_gw("GetJob", lambda job: g.GetJobRequest(job_id=job)), READ_JOB, "'jobs:read'"),
    "/workmesh.v1.Gateway/ListJobs": Row(
        _gw("ListJobs", lambda _: g.ListJobsRequest()), NO_JOB, "'jobs:read'", job=False
    ),
    "/workmesh.v1.Gateway/CancelJob": Row(
        _gw("CancelJob", lambda job: g.CancelJobRequest(job_id=job)),
        MANAGE_JOB,
        "'jobs:submit'",
        fresh=lambda ctx: ctx.running_job(),
    ),
    "/workmesh.v1.Gateway/DeleteJob": Row(
        _gw("DeleteJob", lambda job: g.DeleteJobRequest(job_id=job)),
        MANAGE_JOB,
        "'jobs:submit'",
        fresh=lambda ctx: ctx.finished_job(),
    ),
    "/workmesh.v1.Gateway/GrantSeriesReader": Row(
        lambda ctx, job, md: ctx.gateway.GrantSeriesReader(
            r.GrantReaderRequest(job_id=job, reader=ctx.reader_name()), timeout=30, metadata=md
        ),
        SHARE_JOB,
        "'jobs:submit'",
    ),
    # The table's results service keeps series in Parquet files, whose read tokens expire rather
    # than being revoked: a caller let through gets FAILED_PRECONDITION saying so (the access
    # rule is decided before; InfluxDB revokes: tests/auth/test_series_readers.py).
    "/workmesh.v1.Gateway/RevokeSeriesReader": Row(
        lambda ctx, job, md: ctx.gateway.RevokeSeriesReader(
            r.RevokeReaderRequest(job_id=job, reader="walk-reader"), timeout=30, metadata=md
        ),
        _statuses(SHARE_JOB, owner=PRECONDITION, manager=PRECONDITION, admin=PRECONDITION),
        "'jobs:submit'",
    ),
    "/workmesh.v1.Gateway/RunJobs": Row(
        lambda ctx, _, md: list(
            ctx.gateway.RunJobs(
                iter([g.RunJobsRequest(jobs=[g.RunJobsItem(ref="a", job=_series_job())])]), timeout=60, metadata=md
            )
        ),
        NO_JOB,
        "'jobs:submit'",
        job=False,
    ),
    "/workmesh.v1.Gateway/EstimateJob": Row(
        _gw(
            "EstimateJob",
            lambda _: g.EstimateJobRequest(workflow_type="series-async", params={"steps": c.ParamValue(int_value=4)}),
        ),
        NO_JOB,
        "'jobs:submit'",
        job=False,
    ),
    "/workmesh.v1.Gateway/GetQueue": Row(
        _gw("GetQueue", lambda _: g.GetQueueRequest()), NO_JOB, "'jobs:read'", job=False
    ),
    "/workmesh.v1.Gateway/RetryJob": Row(
        _gw("RetryJob", lambda job: g.RetryJobRequest(job_id=job)),
        MANAGE_JOB,
        "'jobs:submit'",
        fresh=lambda ctx: ctx.cancelled_job(),
    ),
    # Steps are started by the worker running the parent, with its attempt's write capability;
    # a caller's token never starts one.
    "/workmesh.v1.Gateway/RunStep": Row(
        _step,
        {**{name: DENIED for name in TOKENS}, "nobody": UNAUTH, "capability": OK, "other_capability": DENIED},
        "'workmesh-series-capability'",
        rule="capability",
        target=lambda ctx: ctx.running_job(),
        job=False,
    ),
    # The same on the stream: each request answered with the status RunStep would end with.
    "/workmesh.v1.Gateway/RunSteps": Row(
        _steps,
        {**{name: DENIED for name in TOKENS}, "nobody": UNAUTH, "capability": OK, "other_capability": DENIED},
        "'workmesh-series-capability'",
        rule="capability",
        target=lambda ctx: ctx.running_job(),
        job=False,
    ),
    # ---- workmesh.v1.Sharing
    "/workmesh.v1.Sharing/ShareJob": Row(
        _stub("sharing", "ShareJob", lambda job: s.ShareJobRequest(job_id=job, grantee="yan")),
        SHARE_JOB,
        "'jobs:submit'",
    ),
    "/workmesh.v1.Sharing/ListShares": Row(
        _stub("sharing", "ListShares", lambda _: s.ListSharesRequest()), NO_JOB, "'jobs:read'", job=False
    ),
    "/workmesh.v1.Sharing/Unshare": Row(
        _stub("sharing", "Unshare", lambda share: s.UnshareRequest(share_id=share)),
        SHARE_JOB,
        "'jobs:submit'",
        target=lambda ctx: ctx.share_of_job(),
        fresh=lambda ctx: ctx.share_of_job(),
        job=False,
    ),
    # ---- workmesh.v1.GatewayAdmin, TokenAdmin, Audit
    "/workmesh.v1.GatewayAdmin/CheckInvariants": Row(
        _stub("gateway_admin", "CheckInvariants", lambda _: a.CheckInvariantsRequest()),
        ADMIN_ONLY,
        "'admin'",
        rule="'admin'",
        job=False,
    ),
    "/workmesh.v1.TokenAdmin/CreateToken": Row(
        _stub("tokens", "CreateToken", lambda _: a.CreateTokenRequest(name="walk", scopes=["tokens:admin"])),
        TOKENS_ADMIN,
        "'tokens:admin'",
        rule="'tokens:admin'",
        job=False,
    ),
    "/workmesh.v1.TokenAdmin/ListTokens": Row(
        _stub("tokens", "ListTokens", lambda _: a.ListTokensRequest()),
        TOKENS_ADMIN,
        "'tokens:admin'",
        rule="'tokens:admin'",
        job=False,
    ),
    "/workmesh.v1.TokenAdmin/RevokeToken": Row(
        _stub("tokens", "RevokeToken", lambda token: a.RevokeTokenRequest(token_id=token)),
        TOKENS_ADMIN,
        "'tokens:admin'",
        rule="'tokens:admin'",
        target=lambda ctx: ctx.acme_token(),
        fresh=lambda ctx: ctx.acme_token(),
        job=False,
    ),
    "/workmesh.v1.Audit/ListAudit": Row(
        _stub("audit", "ListAudit", lambda _: a.ListAuditRequest()),
        TOKENS_ADMIN,
        "'tokens:admin'",
        rule="'tokens:admin'",
        job=False,
    ),
    # ---- workmesh.v1.Results
    "/workmesh.v1.Results/WriteSeries": Row(
        lambda ctx, job, md: list(ctx.results.WriteSeries(iter([_chunk(job)]), timeout=30, metadata=md)),
        CAPABILITY_ONLY,
        "capability",
        rule="capability",
        target=lambda ctx: ctx.job,
        job=False,
    ),
    "/workmesh.v1.Results/ReadSeries": Row(
        lambda ctx, job, md: list(ctx.results.ReadSeries(r.ReadSeriesRequest(job_ids=[job]), timeout=30, metadata=md)),
        READ_SERIES,
        "'series:read'",
        op="read",
    ),
    "/workmesh.v1.Results/ListSeries": Row(
        _stub("results", "ListSeries", lambda job: r.ListSeriesRequest(job_id=job)),
        READ_SERIES,
        "'series:read'",
        op="read",
    ),
    "/workmesh.v1.Results/DeleteSeries": Row(
        _stub("results", "DeleteSeries", lambda job: r.DeleteSeriesRequest(job_id=job)),
        CAPABILITY_ONLY,
        "capability",
        rule="capability",
        fresh=lambda ctx: ctx.finished_job(),
        job=False,
        op="delete",
    ),
    "/workmesh.v1.Results/GrantReader": Row(
        lambda ctx, job, md: ctx.results.GrantReader(
            r.GrantReaderRequest(job_id=job, reader=ctx.reader_name()), timeout=30, metadata=md
        ),
        CAPABILITY_ONLY,
        "capability",
        rule="capability",
        job=False,
        op="grant",
    ),
    "/workmesh.v1.Results/RevokeReader": Row(  # Parquet: see RevokeSeriesReader
        lambda ctx, job, md: ctx.results.RevokeReader(
            r.RevokeReaderRequest(job_id=job, reader="walk-reader"), timeout=30, metadata=md
        ),
        _statuses(CAPABILITY_ONLY, capability=PRECONDITION),
        "capability",
        rule="capability",
        job=False,
        op="grant",
    ),
}
