"""Entry points of the client subcommands: types, submit, watch, jobs, job, cancel, delete, health.

Each takes the parsed arguments and returns the exit code; :mod:`._client` talks to the gateway
and renders (with :mod:`._types_table` and :mod:`._follow`), :mod:`._queue` shows the scheduler's view.
"""

from __future__ import annotations

from workmesh.services.cli._client import (
    cancel,
    delete,
    err,
    gateway_stub,
    health,
    parse_pairs,
    print_json,
    show_job,
    show_jobs,
    submit_request,
    to_dict,
)
from workmesh.services.cli._follow import follow
from workmesh.services.cli._queue import estimate
from workmesh.services.cli._types_table import show_types

__all__ = [
    "cancel_command",
    "delete_command",
    "health_command",
    "job_command",
    "jobs_command",
    "submit_command",
    "types_command",
    "watch_command",
]


def types_command(args) -> int:
    return show_types(gateway_stub(args.gateway, args.token, args.ca), args.json)


def submit_command(args) -> int:
    stub = gateway_stub(args.gateway, args.token, args.ca)
    request = submit_request(
        args.workflow_type,
        parse_pairs(args.param, "--param"),
        timeout=args.timeout,
        key=args.idempotency_key,
        labels=parse_pairs(args.label, "--label"),
        tenant=args.tenant,
        user=args.user,
        priority=args.priority,
        version=args.version,
    )
    if args.estimate:
        return estimate(stub, request, args.json)
    reply = stub.SubmitJob(request, timeout=30)
    if not args.follow:
        if args.json:
            print_json(to_dict(reply))
        else:
            print(reply.job.job_id)
        return 0
    if not args.json:
        err.print(f"job {reply.job.job_id}" + (" (existing)" if reply.existing else ""))
    return follow(stub, reply.job.job_id, as_json=args.json)


def watch_command(args) -> int:
    return follow(gateway_stub(args.gateway, args.token, args.ca), args.job_id, after_seq=args.after, as_json=args.json)


def jobs_command(args) -> int:
    return show_jobs(
        gateway_stub(args.gateway, args.token, args.ca),
        args.workflow_type,
        args.status,
        args.limit,
        args.json,
        tenant_wide=args.tenant_wide,
        all_tenants=args.all_tenants,
        shared=args.shared,
    )


def job_command(args) -> int:
    return show_job(gateway_stub(args.gateway, args.token, args.ca), args.job_id, args.json)


def cancel_command(args) -> int:
    return cancel(gateway_stub(args.gateway, args.token, args.ca), args.job_id, args.reason, args.json)


def delete_command(args) -> int:
    return delete(gateway_stub(args.gateway, args.token, args.ca), args.job_id)


def health_command(args) -> int:
    return health(args.address, args.service, args.timeout)
