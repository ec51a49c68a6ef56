"""The client side of the ``workmesh`` CLI: talk to a gateway, render jobs and errors.

The ``types`` table is in :mod:`._types_table`, following a job's events in :mod:`._follow`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import cast

import grpc
from google.protobuf import duration_pb2
from google.protobuf.json_format import MessageToDict
from rich.console import Console
from rich.table import Table

from workmesh.services.core.durations import parse_duration, to_proto
from workmesh.services.core.errors import PermissionDenied, Unauthenticated, WorkmeshError, from_rpc_error
from workmesh.services.core.limits import STATUS_NAMES, message_options
from workmesh.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc

out = Console()
err = Console(stderr=True)


class UsageError(Exception):
    """A malformed command-line argument (exit code 2)."""


def gateway_channel(address: str, token: str = "", ca: str = "") -> grpc.Channel:
    """A channel to the gateway sending `token` (an API token or JWT) with every call; TLS
    verified against the CA file `ca` when given."""
    options = message_options()
    if ca:
        with open(ca, "rb") as f:
            channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(f.read()), options=options)
    else:
        channel = grpc.insecure_channel(address, options=options)
    if not token:
        return channel
    # Here, not at start-up: the auth package brings JWT and cryptography (0.3 s of CPU per CLI call).
    from workmesh.services.core.auth import with_bearer

    return with_bearer(channel, token)


def gateway_stub(address: str, token: str = "", ca: str = "") -> gateway_pb2_grpc.GatewayStub:
    return gateway_pb2_grpc.GatewayStub(gateway_channel(address, token, ca))


def to_dict(message) -> dict:
    return MessageToDict(message, preserving_proto_field_name=True)


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2, sort_keys=False))


def parse_pairs(pairs: Iterable[str], what: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a pair without '=' is a usage error."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} {pair!r}: expected KEY=VALUE")
        result[key] = value
    return result


def parse_timeout(text: str) -> duration_pb2.Duration:
    """``--timeout``: a duration (``90``, ``90s``, ``1h30m``, ``PT2H``...) as a Duration."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"--timeout {text!r}: {exc}") from None
    if seconds <= 0:
        raise UsageError(f"--timeout {text!r}: must be positive")
    return to_proto(seconds)


# --- jobs --------------------------------------------------------------------------------------


def submit_request(
    workflow_type: str,
    params: dict[str, str],
    *,
    timeout: str | None = None,
    key: str = "",
    labels: dict[str, str] | None = None,
    tenant: str = "",
    user: str = "",
    priority: str = "",
    version: str = "",
) -> gateway_pb2.SubmitJobRequest:
    request = gateway_pb2.SubmitJobRequest(
        workflow_type=workflow_type,
        version=version,
        idempotency_key=key,
        labels=labels or {},
        tenant=tenant,
        user=user,
        priority=priority,
        params={k: common_pb2.ParamValue(string_value=v) for k, v in params.items()},
    )
    if timeout:
        request.timeout.CopyFrom(parse_timeout(timeout))
    return request


def submit(
    stub, workflow_type: str, params: dict[str, str], *, timeout: str | None, key: str, labels: dict[str, str]
) -> gateway_pb2.SubmitJobResponse:
    return stub.SubmitJob(submit_request(workflow_type, params, timeout=timeout, key=key, labels=labels), timeout=30)


def job_row(job: gateway_pb2.Job) -> list[str]:
    created = job.created_at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S") if job.HasField("created_at") else ""
    progress = f"{job.progress.fraction:.0%}" if job.HasField("progress") else ""
    return [job.job_id, job.workflow_type, STATUS_NAMES.get(job.status, "?"), progress, created]


def show_jobs(
    stub,
    workflow_type: str,
    statuses: list[str],
    limit: int,
    as_json: bool,
    *,
    tenant_wide: bool = False,
    all_tenants: bool = False,
    shared: bool = False,
) -> int:
    try:
        # protoc's .pyi types EnumTypeWrapper.Value() as a plain int.
        codes = [cast(common_pb2.JobStatus, common_pb2.JobStatus.Value("JOB_STATUS_" + s.upper())) for s in statuses]
    except ValueError:
        known = ", ".join(n.lower() for n in STATUS_NAMES.values() if n != "UNSPECIFIED")
        raise UsageError(f"--status: unknown status; known: {known}") from None
    reply = stub.ListJobs(
        gateway_pb2.ListJobsRequest(
            workflow_type=workflow_type,
            statuses=codes,
            page_size=limit,
            tenant_wide=tenant_wide,
            all_tenants=all_tenants,
            shared=shared,
        ),
        timeout=10,
    )
    if as_json:
        print_json([to_dict(j) for j in reply.jobs])
        return 0
    table = Table("job", "type", "status", "progress", "created (UTC)")
    for job in reply.jobs:
        table.add_row(*job_row(job))
    out.print(table)
    return 0


def show_job(stub, job_id: str, as_json: bool) -> int:
    """One job's fields, then its step tree (a workflow's steps, nested; ``steps`` in --json)."""
    from workmesh.services.cli._steps import print_tree, step_tree

    job = stub.GetJob(gateway_pb2.GetJobRequest(job_id=job_id), timeout=10)
    nodes = step_tree(stub, job)
    if as_json:
        print_json({**to_dict(job), "steps": nodes})
        return 0
    data = to_dict(job)
    for key in (
        "job_id",
        "workflow_type",
        "version",
        "status",
        "attempts",
        "instance_id",
        "trace_id",
        "created_at",
        "started_at",
        "finished_at",
    ):
        if key in data:
            out.print(f"[bold]{key:<14}[/bold] {data[key]}")
    for key in ("params", "progress", "queue", "result", "error", "labels"):
        if key in data:
            out.print(f"[bold]{key:<14}[/bold] {json.dumps(data[key])}")
    if nodes:
        out.print("[bold]steps[/bold]")
        print_tree(out, job, nodes)
    return 0


def cancel(stub, job_id: str, reason: str, as_json: bool) -> int:
    job = stub.CancelJob(gateway_pb2.CancelJobRequest(job_id=job_id, reason=reason), timeout=30)
    if as_json:
        print_json(to_dict(job))
    else:
        out.print(f"{job.job_id}: {STATUS_NAMES.get(job.status, '?')}")
    return 0


def delete(stub, job_id: str) -> int:
    stub.DeleteJob(gateway_pb2.DeleteJobRequest(job_id=job_id), timeout=60)
    out.print(f"{job_id}: deleted")
    return 0


def health(address: str, service: str, timeout: float) -> int:
    """grpc.health.v1 Check against `address`; exit code 0 when SERVING.

    Over TLS, verified against ``WORKMESH_TLS_CA``, when that is set (a container's healthcheck
    of its own TLS server), for ``WORKMESH_TLS_SERVER_NAME`` when set, else the address's host;
    presenting ``WORKMESH_TLS_CERT``/``_KEY`` when set (a worker with mutual TLS refuses others).
    """
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from workmesh.services.core.tls import TlsConfig

    tls = TlsConfig.from_env()
    opened = (
        grpc.secure_channel(
            address,
            tls.channel_credentials(),
            options=[("grpc.ssl_target_name_override", tls.server_name)] if tls.server_name else [],
        )
        if tls.calls_tls
        else grpc.insecure_channel(address)
    )
    with opened as channel:
        # types-grpcio-health-checking declares HealthStub without its methods.
        reply = health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]
            health_pb2.HealthCheckRequest(service=service), timeout=timeout
        )
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(name)
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


_HINTS: dict[type[WorkmeshError], str] = {
    Unauthenticated: "not signed in or the token was refused: pass --token or set WORKMESH_TOKEN "
    "to an API token (workmesh token create) or a JWT the service accepts",
    PermissionDenied: "signed in, but the token lacks the scope or grant named above: "
    "ask a tenant admin for it, or have the job's owner share it (workmesh share)",
}


def report_error(exc: WorkmeshError) -> int:
    """Print a workmesh error as ``error: CODE: message`` (plus a hint for auth errors); the exit code."""
    err.print(f"[red]error[/red]: {exc.code.name}: {exc.message}", markup=True, highlight=False)
    hint = next((text for cls, text in _HINTS.items() if isinstance(exc, cls)), None)
    if hint is not None:
        err.print(f"  hint: {hint}", markup=False, highlight=False)
    return 3 if exc.code == grpc.StatusCode.UNAVAILABLE else 1


def report_rpc_error(exc: grpc.RpcError) -> int:
    """Print a gRPC error as ``error: CODE: details`` and return the exit code."""
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    if code is None:
        err.print(f"[red]error[/red]: UNKNOWN: {details}")
        return 1
    error = from_rpc_error(cast(grpc.aio.AioRpcError, exc))
    if not isinstance(error, (Unauthenticated, PermissionDenied)):
        err.print(f"[red]error[/red]: {code.name}: {details}")
        return 3 if code == grpc.StatusCode.UNAVAILABLE else 1
    return report_error(error)
