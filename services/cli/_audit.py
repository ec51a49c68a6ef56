"""``workmesh audit [--since DURATION|TIME] [--tenant T] [--json]``: the gateway's audit log
(workmesh.v1.Audit; needs ``tokens:admin`` for the caller's tenant, ``admin`` for every tenant)."""

from __future__ import annotations

import datetime as dt

from rich.table import Table

from workmesh.services.cli._client import UsageError, gateway_channel, out, print_json, to_dict
from workmesh.services.core.durations import parse_duration
from workmesh.v1 import admin_pb2, admin_pb2_grpc

__all__ = ["audit_command", "parse_since"]

_PAGE = 1000


def parse_since(text: str, now: dt.datetime | None = None) -> dt.datetime | None:
    """`--since`: a duration back from now (``1h``, ``30m``, ``7d``) or a time (ISO 8601; UTC
    unless it names its zone); empty: from the first entry.

    Raises:
        UsageError: neither.
    """
    if not text:
        return None
    now = now or dt.datetime.now(dt.UTC)
    try:
        seconds = parse_duration(text)
    except ValueError:
        pass
    else:
        if seconds < 0:
            raise UsageError(f"--since: a duration back from now must not be negative, got {text!r}")
        return now - dt.timedelta(seconds=seconds)
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--since: expected a duration (1h, 30m, 7d) or a time (2026-12-02T06:00:00Z), got {text!r}"
        ) from None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when


def audit_command(args) -> int:
    """Print the audit entries (every page), oldest first."""
    since = parse_since(args.since)
    stub = admin_pb2_grpc.AuditStub(gateway_channel(args.gateway, args.token, args.ca))
    request = admin_pb2.ListAuditRequest(tenant=args.tenant, limit=_PAGE)
    if since is not None:
        request.since.FromDatetime(since)
    entries = []
    while True:
        reply = stub.ListAudit(request, timeout=30)
        entries.extend(reply.entries)
        if len(reply.entries) < _PAGE:
            break
        request.after_seq = reply.entries[-1].seq
    if args.json:
        print_json([to_dict(e) for e in entries])
        return 0
    table = Table("TIME (UTC)", "TENANT", "SUBJECT", "ACTION", "TARGET", "FROM", "DETAIL")
    for e in entries:
        table.add_row(
            e.time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S"),
            e.tenant or "-",
            e.subject or "-",
            e.action,
            e.target,
            e.peer,
            e.detail,
        )
    out.print(table)
    return 0
