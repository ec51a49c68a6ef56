"""``workmesh share JOB|--label k=v [--tenant-wide [--tenant T]] --with SUBJECT [--group] [--manage]``,
``workmesh shares [--job JOB] [--json]``, ``workmesh unshare SHARE_ID``: sharing through the gateway's
workmesh.v1.Sharing service."""

from __future__ import annotations

from rich.table import Table

from workmesh.services.cli._client import UsageError, gateway_channel, out, print_json, to_dict
from workmesh.v1 import sharing_pb2, sharing_pb2_grpc

__all__ = ["share_command", "shares_command", "unshare_command"]


def _stub(args) -> sharing_pb2_grpc.SharingStub:
    return sharing_pb2_grpc.SharingStub(gateway_channel(args.gateway, args.token, args.ca))


def _what(share: sharing_pb2.Share) -> str:
    return share.job_id or f"label {share.label}" + (f" of {share.owner}" if share.owner else f" in {share.tenant}")


def _whom(share: sharing_pb2.Share) -> str:
    return f"group {share.grantee}" if share.group else share.grantee


def _level(share: sharing_pb2.Share) -> str:
    return "manage" if share.manage else "read"


def share_command(args) -> int:
    """Share a job, or the caller's jobs with a label value (``--tenant-wide``: the tenant's)."""
    if bool(args.job_id) == bool(args.label):
        raise UsageError("name a job or --label key=value (one of them)")
    if (args.tenant_wide or args.tenant) and not args.label:
        raise UsageError("--tenant-wide and --tenant go with --label key=value")
    if args.tenant and not args.tenant_wide:
        raise UsageError("--tenant goes with --tenant-wide")
    request = sharing_pb2.ShareJobRequest(
        job_id=args.job_id or "",
        label=args.label,
        grantee=args.grantee,
        group=args.group,
        manage=args.manage,
        tenant_wide=args.tenant_wide,
        tenant=args.tenant,
    )
    share = _stub(args).ShareJob(request, timeout=10)
    if args.json:
        print_json(to_dict(share))
    else:
        out.print(f"shared {_what(share)} with {_whom(share)} ({_level(share)}): share {share.share_id}")
    return 0


def shares_command(args) -> int:
    """List the shares the caller may see."""
    reply = _stub(args).ListShares(sharing_pb2.ListSharesRequest(job_id=args.job), timeout=10)
    if args.json:
        print_json([to_dict(s) for s in reply.shares])
        return 0
    table = Table("SHARE", "WHAT", "WITH", "LEVEL", "BY", "CREATED (UTC)")
    for s in reply.shares:
        created = s.created_at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(s.share_id, _what(s), _whom(s), _level(s), s.created_by or "-", created)
    out.print(table)
    return 0


def unshare_command(args) -> int:
    """Take a share back."""
    share = _stub(args).Unshare(sharing_pb2.UnshareRequest(share_id=args.share_id), timeout=10)
    if args.json:
        print_json(to_dict(share))
    else:
        out.print(f"unshared {_what(share)} from {_whom(share)} (share {share.share_id})")
    return 0
