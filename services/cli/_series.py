"""``workmesh series``: list a job's time series, export a field as CSV, plot jobs side by side."""

from __future__ import annotations

import asyncio
import json
import sys

from workmesh.services.cli._client import UsageError, out


async def results_address(explicit: str) -> str:
    """The results service to use: the flag/env value, else the first passing instance in the registry."""
    if explicit:
        return explicit
    # Lazy on purpose (CLI start-up): the registry client and the results package (pyarrow,
    # matplotlib) load only when `workmesh series` runs.
    from workmesh.registry import RegistryConfig, find_service
    from workmesh.services.results import SERVICE_NAME

    instances = await find_service(RegistryConfig.from_env(), SERVICE_NAME)
    if not instances:
        raise UsageError(f"no passing {SERVICE_NAME} in the registry; give --results HOST:PORT")
    return f"{instances[0].address}:{instances[0].port}"


def run(args) -> int:
    if args.job_ids[0] in ("grant", "revoke"):
        return readers(args)
    return asyncio.run(_run(args))


def readers(args) -> int:
    """``series grant JOB --reader NAME`` / ``series revoke JOB --reader NAME``, through the gateway."""
    from workmesh.services.cli._client import gateway_stub, to_dict
    from workmesh.v1 import results_pb2

    action, *jobs = args.job_ids
    if len(jobs) != 1 or not args.reader:
        raise UsageError(f"usage: workmesh series {action} JOB --reader NAME")
    stub = gateway_stub(args.gateway, args.token, args.ca)
    if action == "revoke":
        stub.RevokeSeriesReader(results_pb2.RevokeReaderRequest(job_id=jobs[0], reader=args.reader), timeout=30)
        print(f"revoked reader {args.reader} of job {jobs[0]}")
        return 0
    reply = stub.GrantSeriesReader(
        results_pb2.GrantReaderRequest(job_id=jobs[0], reader=args.reader, ttl_seconds=args.ttl), timeout=30
    )
    if args.json:
        print(json.dumps(to_dict(reply), indent=2))
        return 0
    print(f"store:    {reply.store}\nhost:     {reply.host}\ndatabase: {reply.database}")
    if reply.username:
        print(f"username: {reply.username}\npassword: {reply.password}")
        print("(shown once: InfluxDB keeps only its hash; READ on this database only)")
    else:
        print(f"token:    {reply.token}\nexpires:  {reply.expires_at} (Unix seconds)")
        print("(send as gRPC metadata workmesh-series-capability to ListSeries/ReadSeries)")
    return 0


async def _run(args) -> int:
    # Lazy on purpose (CLI start-up): see results_address.
    from workmesh.services.clients import ResultsClient

    async with ResultsClient(await results_address(args.results), token=args.token) as client:
        return await _show(args, client)


async def _show(args, client) -> int:
    from workmesh.services.results import export_csv, plot_series, series_rows

    if args.csv or args.plot:
        if not args.field:
            raise UsageError("--csv and --plot need --field FIELD")
        if args.csv:
            await export_csv(client, args.job_ids, args.field, sys.stdout, measurement=args.measurement)
        if args.plot:
            path = await plot_series(client, args.job_ids, args.field, args.plot, measurement=args.measurement)
            print(f"wrote {path}", file=sys.stderr)
        return 0
    rows = [row | {"job_id": job} for job in args.job_ids for row in await series_rows(client, job)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.table import Table

    table = Table("job", "measurement", "tags", "fields", "points", "from", "to")
    for row in rows:
        tags = ",".join(f"{k}={v}" for k, v in row["tags"].items())
        table.add_row(
            row["job_id"],
            row["measurement"],
            tags,
            " ".join(row["fields"]),
            f"{row['count']:,}",
            row["start"],
            row["end"],
        )
    out.print(table)
    return 0
