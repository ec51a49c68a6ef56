"""``workmesh retry JOB``: run an ended job again as a new attempt of the same job (RetryJob)."""

from __future__ import annotations

from workmesh.services.cli._client import err, gateway_stub, print_json, to_dict
from workmesh.services.cli._follow import follow
from workmesh.v1 import gateway_pb2

__all__ = ["retry_command"]


def retry_command(args) -> int:
    """Retry the job; print its id (the same job), or follow it to its new end with ``--follow``."""
    stub = gateway_stub(args.gateway, args.token, args.ca)
    request = gateway_pb2.RetryJobRequest(job_id=args.job_id, idempotency_key=args.idempotency_key)
    reply = stub.RetryJob(request, timeout=30)
    job = reply.job
    if not args.follow:
        if args.json:
            print_json(to_dict(reply))
        else:
            print(job.job_id)
        return 0
    if not args.json:
        err.print(f"job {job.job_id}: attempt {job.attempts + 1}" + (" (retried already)" if reply.existing else ""))
    return follow(stub, job.job_id, after_seq=job.last_seq - 1, as_json=args.json)
