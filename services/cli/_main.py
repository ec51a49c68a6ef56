"""``workmesh`` — one command line for running and using the mesh.

Servers: ``dev`` (everything on one machine), ``registry``, ``gateway``, ``worker``, ``results``.
Clients: ``types``, ``submit``, ``watch``, ``jobs``, ``job``, ``cancel``, ``delete``, ``retry``, ``share``,
``shares``, ``unshare``, ``audit``, ``series``, ``health``, ``bench``, ``demo``. Addresses come from flags or
the environment: ``WORKMESH_GATEWAY`` for the gateway, ``CONSUL_HTTP_ADDR`` for the registry (as Consul's
own tools read it).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

import grpc

from workmesh.services.cli import _audit, _client, _commands, _queue, _retry, _series, _servers, _share, _tokens
from workmesh.services.core.errors import WorkmeshError

DEFAULT_GATEWAY = "127.0.0.1:50051"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand (also read by deploy/check_compose.py)."""
    parser = argparse.ArgumentParser(prog="workmesh", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    gateway_env = os.environ.get("WORKMESH_GATEWAY", DEFAULT_GATEWAY)

    def client(name: str, help_text: str, handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.set_defaults(handler=handler)
        cmd.add_argument("--gateway", default=gateway_env, help="gateway address (env WORKMESH_GATEWAY)")
        cmd.add_argument("--json", action="store_true", help="machine-readable output")
        cmd.add_argument(
            "--token",
            default=os.environ.get("WORKMESH_TOKEN", ""),
            help="bearer token (API token or JWT) when the gateway authenticates (env WORKMESH_TOKEN)",
        )
        cmd.add_argument(
            "--ca",
            default=os.environ.get("WORKMESH_TLS_CA", ""),
            help="connect with TLS, verifying the gateway against this CA (env WORKMESH_TLS_CA)",
        )
        return cmd

    dev = sub.add_parser("dev", help="run registry, results, gateway and the example workers here")
    dev.add_argument("--registry-port", type=int, default=8500)
    dev.add_argument("--gateway-port", type=int, default=50051)
    dev.add_argument("--results-port", type=int, default=50052)
    dev.add_argument("--http-port", type=int, default=8080, help="web console and HTTP API (0: none)")
    dev.add_argument(
        "--worker",
        action="append",
        dest="workers",
        metavar="MODULE:ATTR",
        help="worker target to start (repeatable; default: the examples)",
    )
    dev.add_argument("--data-dir", default=".workmesh", help="job store and series files")
    dev.add_argument(
        "--auth",
        action="store_true",
        help="authentication on, with a local HS256 key kept in the data dir; prints a token with every scope",
    )
    dev.set_defaults(handler=_servers.dev)

    demo = sub.add_parser("demo", help="start a dev mesh on free ports, run an example workflow, stop")
    demo.add_argument(
        "workflow",
        nargs="?",
        default="heat-demand",
        choices=("heat-demand", "district-design"),
        help="heat-demand (one job, the default) or district-design (a workflow of steps: its step tree is shown)",
    )
    demo.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    demo.set_defaults(handler=_servers.demo)

    reg = sub.add_parser("registry", help="run the embedded Consul-API registry")
    reg.add_argument("--host", default="127.0.0.1")
    reg.add_argument("--port", type=int, default=8500)
    reg.set_defaults(handler=_servers.registry)

    gw = sub.add_parser("gateway", help="run the gateway")
    gw.set_defaults(handler=_servers.gateway)
    gw.add_argument("--listen", default=None, help="host:port (env WORKMESH_GATEWAY_ADDR)")
    gw.add_argument(
        "--http",
        default=None,
        metavar="HOST:PORT",
        help="HTTP API and web console, or 0/off (env WORKMESH_HTTP_ADDR, default 127.0.0.1:8080)",
    )

    wk = sub.add_parser("worker", help="run a worker serving the workflow types of MODULE:ATTR")
    wk.set_defaults(handler=_servers.worker)
    wk.add_argument("target", metavar="MODULE:ATTR", help="a Worker, or a list of @workflow functions")
    wk.add_argument("--listen", default=None, help="host:port to serve on (port 0: any free port)")
    wk.add_argument("--capacity", type=int, default=None, help="jobs run at once")

    rs = sub.add_parser("results", help="run the results service")
    rs.set_defaults(handler=_servers.results)
    rs.add_argument("--listen", default=None, help="host:port (env WORKMESH_RESULTS_ADDR)")
    rs.add_argument("--store", choices=("parquet", "influx"), default=None)
    for cmd in (gw, wk, rs):
        cmd.add_argument("--tls-cert", default=None, help="serve TLS with this PEM certificate (env WORKMESH_TLS_CERT)")
        cmd.add_argument("--tls-key", default=None, help="its private key (env WORKMESH_TLS_KEY)")

    client("types", "list the workflow types live workers offer", _commands.types_command)

    sm = client("submit", "submit a job", _commands.submit_command)
    sm.add_argument("workflow_type", metavar="TYPE")
    sm.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    sm.add_argument("--follow", "-f", action="store_true", help="show progress and the result")
    sm.add_argument("--timeout", help="job timeout, e.g. 90s, 15m, 1h30m, PT2H (plain numbers: seconds)")
    sm.add_argument("--idempotency-key", default="", help="submitting the same key again returns the same job")
    sm.add_argument(
        "--version",
        default="",
        metavar="RANGE",
        help="the versions of the type it may run on: =1.2.0, ^1.2, ~1.2 or >=1.2,<2 (default: the newest live)",
    )
    sm.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    sm.add_argument(
        "--tenant",
        default=os.environ.get("WORKMESH_TENANT", ""),
        help="who the job is accounted to for fair share (env WORKMESH_TENANT)",
    )
    sm.add_argument("--user", default=os.environ.get("WORKMESH_USER", ""), help="(env WORKMESH_USER)")
    sm.add_argument("--priority", default="", help="among your own jobs: low, normal, high or -1000..1000")
    sm.add_argument(
        "--estimate", action="store_true", help="print the runtime estimate and expected start without submitting"
    )

    wt = client("watch", "follow a job's progress and result", _commands.watch_command)
    wt.add_argument("job_id", metavar="JOB")
    wt.add_argument("--after", type=int, default=0, help="resume after this event number")

    jb = client("jobs", "list jobs, newest first", _commands.jobs_command)
    jb.add_argument("--type", default="", dest="workflow_type")
    jb.add_argument("--status", action="append", default=[], help="queued, running, succeeded, ...")
    jb.add_argument("--limit", type=int, default=50)
    jb.add_argument("--tenant-wide", action="store_true", help="every job of your tenant (needs jobs:manage)")
    jb.add_argument("--all-tenants", action="store_true", help="every job (needs admin)")
    jb.add_argument("--shared", action="store_true", help="also the jobs shared with you")

    client("job", "show one job (status, result, trace id, step tree)", _commands.job_command).add_argument(
        "job_id", metavar="JOB"
    )
    client(
        "queue", "queued and running jobs per type, by owner, with share and usage", _queue.queue_command
    ).add_argument("workflow_type", metavar="TYPE", nargs="?", default="")
    cn = client("cancel", "cancel a job", _commands.cancel_command)
    cn.add_argument("job_id", metavar="JOB")
    cn.add_argument("--reason", default="cancelled from the CLI")
    client("delete", "delete a job, its events and its series", _commands.delete_command).add_argument(
        "job_id", metavar="JOB"
    )

    rt = client(
        "retry",
        "run a failed, cancelled or timed-out job again as a new attempt of the same job "
        "(its succeeded steps are reused)",
        _retry.retry_command,
    )
    rt.add_argument("job_id", metavar="JOB")
    rt.add_argument("--follow", "-f", action="store_true", help="show the new attempt's progress and result")
    rt.add_argument("--idempotency-key", default="", help="retrying with the same key again retries once")

    sh = client("share", "share a job, or your jobs with a label value, with a subject or group", _share.share_command)
    sh.add_argument("job_id", metavar="JOB", nargs="?", default="")
    sh.add_argument("--label", default="", metavar="KEY=VALUE", help="every job of yours with this label value")
    sh.add_argument("--with", dest="grantee", required=True, metavar="SUBJECT", help="who gets access")
    sh.add_argument("--group", action="store_true", help="SUBJECT is a group claim, not a subject")
    sh.add_argument("--manage", action="store_true", help="also cancel, delete and retry (default: read only)")
    sh.add_argument(
        "--tenant-wide", action="store_true", help="with --label: every job of the tenant with it (jobs:manage)"
    )
    sh.add_argument("--tenant", default="", help="with --tenant-wide: another tenant's jobs (admin)")
    client("shares", "the shares you gave, of your jobs, and given to you", _share.shares_command).add_argument(
        "--job", default="", metavar="JOB", help="only the shares of this job"
    )
    client("unshare", "take a share back", _share.unshare_command).add_argument("share_id", metavar="SHARE_ID")

    au = client("audit", "who submitted, cancelled, deleted, retried; tokens created and revoked", _audit.audit_command)
    au.add_argument("--since", default="", help="a duration back from now (1h, 7d) or a time (ISO 8601, UTC)")
    au.add_argument("--tenant", default="", help="one tenant's entries (default: the caller's; admin: every tenant)")

    tk = sub.add_parser("token", help="API tokens for service accounts and scripts (needs tokens:admin)")
    tk.set_defaults(handler=_tokens.token_command)
    tks = tk.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    tkc = tks.add_parser("create", help="create a token; its secret is printed once")
    tkc.add_argument("--tenant", default="", help="default: the caller's own")
    tkc.add_argument("--name", required=True)
    tkc.add_argument("--scopes", required=True, help="comma-separated, e.g. jobs:submit,jobs:read")
    tkl = tks.add_parser("list", help="the tenant's tokens, revoked ones too")
    tkl.add_argument("--tenant", default="")
    tks.add_parser("revoke", help="revoke a token (stops working within 5 s)").add_argument(
        "token_id", metavar="TOKEN_ID"
    )
    for cmd in (tkc, tkl, tks.choices["revoke"]):
        cmd.add_argument("--gateway", default=gateway_env, help="gateway address (env WORKMESH_GATEWAY)")
        cmd.add_argument(
            "--token",
            default=os.environ.get("WORKMESH_TOKEN", ""),
            help="bearer token of the caller (env WORKMESH_TOKEN)",
        )
        cmd.add_argument(
            "--ca",
            default=os.environ.get("WORKMESH_TLS_CA", ""),
            help="connect with TLS, verifying the gateway against this CA (env WORKMESH_TLS_CA)",
        )
        cmd.add_argument(
            "--database-url",
            default="",
            help="act on this job store directly instead of through the gateway (the first token)",
        )
        cmd.add_argument("--data-dir", default="", help="act on the SQLite job store in this data dir directly")
        cmd.add_argument("--json", action="store_true", help="machine-readable output")

    se = sub.add_parser(
        "series",
        help="list, export or plot the time series of jobs; `series grant|revoke JOB --reader NAME`: external readers",
    )
    se.set_defaults(handler=_series.run)
    se.add_argument("job_ids", nargs="+", metavar="JOB")
    se.add_argument("--reader", default="", help="grant/revoke: the external reader's name")
    se.add_argument("--ttl", type=int, default=0, help="grant on Parquet: read token lifetime in seconds (default 1 h)")
    se.add_argument("--gateway", default=gateway_env, help="grant/revoke: gateway address (env WORKMESH_GATEWAY)")
    se.add_argument(
        "--ca",
        default=os.environ.get("WORKMESH_TLS_CA", ""),
        help="grant/revoke: verify the gateway's TLS certificate against this CA (env WORKMESH_TLS_CA)",
    )
    se.add_argument(
        "--results",
        default=os.environ.get("WORKMESH_RESULTS", ""),
        help="results service address (default: from the registry)",
    )
    se.add_argument(
        "--token",
        default=os.environ.get("WORKMESH_TOKEN", ""),
        help="a JWT with series:read when the results service authenticates (env WORKMESH_TOKEN)",
    )
    se.add_argument("--measurement", default="")
    se.add_argument("--field", default="")
    se.add_argument("--csv", action="store_true", help="export FIELD as CSV to stdout")
    se.add_argument("--plot", metavar="PNG", help="draw FIELD of every JOB into one chart")
    se.add_argument("--json", action="store_true")

    hc = sub.add_parser("health", help="grpc.health.v1 check of a service (exit 0 when serving)")
    hc.set_defaults(handler=_commands.health_command)
    hc.add_argument("address")
    hc.add_argument("--service", default="")
    hc.add_argument("--timeout", type=float, default=3.0)

    bench_cmd = sub.add_parser("bench", help="benchmarks")
    bench_cmd.set_defaults(handler=_bench)
    bench = bench_cmd.add_subparsers(dest="bench", required=True)
    bd = bench.add_parser("dispatch", help="no-op jobs through client -> gateway -> worker -> client")
    bd.add_argument("--jobs", type=int, default=2000)
    bd.add_argument("--concurrency", type=int, default=64)
    bd.add_argument("--gateway", default="", help="a running mesh's gateway (default: start one)")
    bd.add_argument(
        "--store",
        choices=("memory", "sqlite", "postgres", "all"),
        default="memory",
        help="job store of the gateway; all: memory, sqlite and (with --database-url) postgres",
    )
    bd.add_argument(
        "--scheduler",
        choices=("fair", "fifo", "both"),
        default="fair",
        help="the gateway's queue policy; both: FIFO then fair share, same run",
    )
    bd.add_argument(
        "--auth-tls",
        choices=("off", "on", "both"),
        default="off",
        help="authentication (HS256 JWT) and TLS on every hop of the mesh it starts; both: off then on, same run",
    )
    bd.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", ""), help="PostgreSQL URL for --store postgres/all"
    )
    bd.add_argument("--json", action="store_true")
    bp = bench.add_parser("progress", help="progress events: one fast stream, and lag with many watchers")
    bp.add_argument("--events", type=int, default=100_000, help="progress events of the single-stream job")
    bp.add_argument("--jobs", type=int, default=100, help="fan-out: jobs sending progress")
    bp.add_argument("--watchers", type=int, default=500, help="fan-out: WatchJob streams over those jobs")
    bp.add_argument("--rate", type=float, default=20.0, help="fan-out: progress events per second per job")
    bp.add_argument("--seconds", type=float, default=10.0, help="fan-out: how long each job sends")
    bp.add_argument(
        "--unbatched", action="store_true", help="fan-out: one event per message (watchers without WatchJob batch)"
    )
    bp.add_argument("--store", choices=("memory", "sqlite", "postgres"), default="sqlite")
    bp.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", ""), help="PostgreSQL URL for --store postgres"
    )
    bp.add_argument("--json", action="store_true")
    bh = bench.add_parser("http", help="POST /v1/jobs + SSE vs gRPC unary; many SSE watchers")
    bh.add_argument("--jobs", type=int, default=2000)
    bh.add_argument("--concurrency", type=int, default=64)
    bh.add_argument("--watchers", type=int, default=500)
    bh.add_argument("--watched-jobs", type=int, default=100)
    bh.add_argument("--watch-seconds", type=float, default=10.0)
    bh.add_argument("--json", action="store_true")
    bv = bench.add_parser("discovery", help="time until a new worker's type is listed by the gateway")
    bv.add_argument("--rounds", type=int, default=10)
    bv.add_argument("--json", action="store_true")
    bf = bench.add_parser("fairness", help="FIFO against fair share on a contended sleep type (capacity 4)")
    bf.add_argument("--job-seconds", type=float, default=0.2, help="L: the 1 s of the issue's scenario, scaled")
    bf.add_argument("--json", action="store_true")
    be = bench.add_parser("estimate", help="heat-demand runtimes: fit on 3/4 of the runs, predict the rest")
    be.add_argument("--runs", type=int, default=40)
    be.add_argument("--history", type=int, default=10_000, help="finished runs behind the EstimateJob latency")
    be.add_argument("--json", action="store_true")
    bt = bench.add_parser(
        "steps", help="workflow steps: per-step overhead, re-execution of a parent whose steps are done"
    )
    bt.add_argument("--steps", type=int, default=100, help="no-op steps per parent")
    bt.add_argument("--runs", type=int, default=3)
    bt.add_argument("--store", choices=("memory", "sqlite", "postgres"), default="sqlite")
    bt.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", ""), help="PostgreSQL URL for --store postgres"
    )
    bt.add_argument("--json", action="store_true")
    bj = bench.add_parser("jobs-page", help="the console's Jobs page requests (pages, filters) with many jobs stored")
    bj.add_argument("--jobs", type=int, default=10_000)
    bj.add_argument("--repeats", type=int, default=30, help="requests per figure")
    bj.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    bj.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", ""), help="PostgreSQL URL for --store postgres"
    )
    bj.add_argument("--json", action="store_true")
    bs = bench.add_parser("series", help="write and read a job's worth of time series")
    bs.add_argument("--store", choices=("parquet", "influx"), default="parquet")
    bs.add_argument("--components", type=int, default=1000)
    bs.add_argument("--fields", type=int, default=10)
    bs.add_argument("--steps", type=int, default=8760)
    bs.add_argument("--influx-url", default=os.environ.get("INFLUX_URL", ""))
    bs.add_argument(
        "--variations",
        type=int,
        default=1,
        help="also write N-1 more jobs and read one field of all N aligned (the comparison view)",
    )
    bs.add_argument(
        "--small-batches",
        type=int,
        default=0,
        metavar="N",
        help="instead: read a job written in N small batches before and after compaction",
    )
    bs.add_argument(
        "--reads", type=int, default=1, metavar="N", help="make each read N times and report the median and every run"
    )
    bs.add_argument(
        "--local-reads",
        choices=("on", "off"),
        default="on",
        help="on: the reads take the service's Parquet files over its Unix socket (same host); off: over gRPC",
    )
    bs.add_argument("--json", action="store_true")
    return parser


def _bench(args: argparse.Namespace) -> int:
    """``workmesh bench ...`` (services/bench/_cli.py)."""
    # Lazy on purpose: the benchmarks import every server package and the SQL store (several
    # seconds); only `workmesh bench` needs them, not every command's start-up.
    from workmesh.services.bench import _cli as bench_cli

    return bench_cli.run(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``workmesh`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args) or 0
    except _client.UsageError as exc:
        _client.err.print(f"[red]usage error[/red]: {exc}")
        return 2
    except grpc.RpcError as exc:
        return _client.report_rpc_error(exc)
    except WorkmeshError as exc:
        return _client.report_error(exc)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
