"""The ``workmesh queue`` command and ``workmesh submit --estimate``: the scheduler's view."""

from __future__ import annotations

import datetime as dt

from rich.table import Table

from workmesh.services.cli._client import err, gateway_stub, out, print_json, to_dict
from workmesh.services.cli._types_table import seconds_text
from workmesh.v1 import gateway_pb2


def _when(ts) -> str:
    if not ts.seconds and not ts.nanos:
        return "unknown"
    at = ts.ToDatetime(dt.UTC)
    delta = (at - dt.datetime.now(dt.UTC)).total_seconds()
    return f"{at:%H:%M:%S} UTC ({'now' if delta <= 0 else 'in ' + seconds_text(delta)})"


def estimate(stub, request: gateway_pb2.SubmitJobRequest, as_json: bool) -> int:
    """Print EstimateJob's answer for a job as it would be submitted."""
    reply = stub.EstimateJob(
        gateway_pb2.EstimateJobRequest(
            workflow_type=request.workflow_type,
            params=request.params,
            tenant=request.tenant,
            user=request.user,
            priority=request.priority,
        ),
        timeout=30,
    )
    if as_json:
        print_json(to_dict(reply))
        return 0
    out.print(f"[bold]{reply.workflow_type}[/bold] {reply.version}")
    if reply.basis == "unknown":
        out.print(f"runtime        unknown: {reply.reason}")
    else:
        p50 = reply.runtime_p50.ToNanoseconds() / 1e9
        p90 = reply.runtime_p90.ToNanoseconds() / 1e9
        basis = "its parameters" if reply.basis == "params" else "past runtimes"
        out.print(
            f"runtime        p50 {seconds_text(p50)}, p90 {seconds_text(p90)} "
            f"(from {reply.runs} finished runs, by {basis})" + (f"; {reply.reason}" if reply.reason else "")
        )
    out.print(f"queue position {reply.queue_position}")
    out.print(f"expected start {_when(reply.expected_start)}")
    out.print(f"expected end   {_when(reply.expected_finish)}")
    return 0


def queue_command(args) -> int:
    """``workmesh queue [TYPE]``: per type, queued and running jobs by owner with share and usage."""
    stub = gateway_stub(args.gateway, args.token, args.ca)
    reply = stub.GetQueue(gateway_pb2.GetQueueRequest(workflow_type=args.workflow_type or ""), timeout=10)
    if args.json:
        print_json(to_dict(reply))
        return 0
    err.print(f"policy {reply.policy}, usage half-life {seconds_text(reply.half_life_seconds)}")
    if not reply.types:
        out.print("no queued or running jobs")
    for tq in reply.types:
        table = Table(
            "tenant",
            "user",
            "queued",
            "running",
            "weight",
            "usage",
            "share of usage",
            title=f"{tq.workflow_type}: {tq.queued} queued, {tq.running} running, capacity {tq.capacity}",
        )
        for o in tq.owners:
            table.add_row(
                o.tenant or "-",
                o.user or "-",
                str(o.queued),
                str(o.running),
                f"{o.weight:.0%}",
                f"{seconds_text(o.usage_seconds)}",
                f"{o.share:.0%}",
            )
        out.print(table)
    if reply.owners:
        table = Table("tenant", "user", "queued", "running", "usage", "share of usage", title="usage by owner")
        for o in reply.owners:
            table.add_row(
                o.tenant or "-",
                o.user or "-",
                str(o.queued),
                str(o.running),
                seconds_text(o.usage_seconds),
                f"{o.share:.0%}",
            )
        out.print(table)
    return 0


__all__ = ["estimate", "queue_command"]
