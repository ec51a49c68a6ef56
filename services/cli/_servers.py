"""Server commands of the CLI: run one service in this process, or a whole dev mesh.

Each command imports the server it runs inside its function, on purpose: the CLI imports this
module at start-up, and loading every server (gateway, results, worker SDK, telemetry: several
seconds together) would slow down every ``workmesh`` command, ``--help`` included.
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from workmesh.services.cli import _client as cc
from workmesh.services.cli._devauth import DEV_TENANT, OFF_NOTICE, TOKEN_DAYS, dev_auth_env, dev_token
from workmesh.services.cli._follow import follow
from workmesh.services.cli._steps import print_tree, step_tree
from workmesh.services.cli._types_table import show_types
from workmesh.services.core.tls import TlsConfig
from workmesh.services.devmesh import EXAMPLE_WORKERS, DevMesh
from workmesh.v1 import gateway_pb2

# What `workmesh demo WORKFLOW` submits unless --param says otherwise.
DEMO_PARAMS = {"heat-demand": {"buildings": "500"}, "district-design": {"buildings": "200"}}


def registry(args) -> int:
    from workmesh.registry import run_embedded_registry
    from workmesh.services.core.telemetry import configure_telemetry

    telemetry = configure_telemetry("workmesh-registry")
    try:
        # GRPCUseTLS checks verify against the mesh's CA, as the services' own channels do.
        asyncio.run(run_embedded_registry(args.host, args.port, ca_file=os.environ.get("WORKMESH_TLS_CA", "").strip()))
    finally:
        telemetry.shutdown()
    return 0


def _tls(args):
    return TlsConfig.from_env(cert=args.tls_cert or "", key=args.tls_key or "")


def gateway(args) -> int:
    from workmesh.services.gateway import GatewayConfig, serve
    from workmesh.services.gateway.http import parse_address

    config = replace(GatewayConfig.from_env(), tls=_tls(args))
    if args.listen:
        config = replace(config, address=args.listen)
    if args.http is not None:
        config = replace(config, http=replace(config.http, address=parse_address(args.http)))
    asyncio.run(serve(config))
    return 0


def worker(args) -> int:
    from workmesh.workers import WorkerConfig, run_worker

    config = WorkerConfig.from_env().with_(tls=_tls(args))
    if args.listen:
        config = config.with_listen(args.listen)
    if args.capacity is not None:
        config = config.with_capacity(args.capacity)
    asyncio.run(run_worker(args.target, config))
    return 0


def results(args) -> int:
    from workmesh.services.results import ResultsConfig, serve

    config = replace(ResultsConfig.from_env(), tls=_tls(args))
    if args.listen:
        config = replace(config, listen=args.listen)
    if args.store:
        config = replace(config, store=args.store)
    asyncio.run(serve(config))
    return 0


def dev(args) -> int:
    """Run the whole mesh in the foreground until Ctrl-C (or SIGTERM)."""
    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {"WORKMESH_LOG_FORMAT": "console"}
    token = ""
    if args.auth:
        env.update(dev_auth_env(data_dir))
        token = dev_token(data_dir)
    mesh = DevMesh(
        workers=args.workers or EXAMPLE_WORKERS,
        registry_port=args.registry_port,
        gateway_port=args.gateway_port,
        results_port=args.results_port,
        data_dir=data_dir,
        http_port=args.http_port or None,
        env=env,
        token=token,
    )
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops the mesh as Ctrl-C does
    signal.signal(signal.SIGINT, _interrupt)
    try:
        mesh.start()
        print("\nworkmesh dev is running:")
        for line in mesh.describe():
            print("  " + line)
        if mesh.console_url:
            print(f"\n  web console: {mesh.console_url}")
        print(f"\n  export WORKMESH_GATEWAY={mesh.gateway_address} CONSUL_HTTP_ADDR={mesh.registry_address}")
        if token:
            print(
                f"\n  authentication is ON (HS256 key in {data_dir / 'auth-keys.json'}); a token with every "
                f"scope for tenant {DEV_TENANT!r}, valid {TOKEN_DAYS} days:\n  export WORKMESH_TOKEN={token}\n"
            )
        else:
            print(f"\n  {OFF_NOTICE}\n")
        print(
            "  workmesh types | workmesh submit heat-demand -p buildings=200 --follow\n  Ctrl-C stops everything.\n",
            flush=True,
        )
        while all(p.popen.poll() is None for p in mesh.processes):
            time.sleep(0.5)
        print("a process of the mesh exited; stopping the rest")
        return 1
    except KeyboardInterrupt:
        print("\nstopping workmesh dev ...")
        return 0
    finally:
        _ignore_signals()  # (already, after a signal)
        mesh.stop()


def _ignore_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _interrupt(signum, frame) -> None:
    # The first Ctrl-C or SIGTERM stops the mesh; a second one must not cut that short (it
    # would leave the children running).
    _ignore_signals()
    raise KeyboardInterrupt


def demo(args) -> int:
    """Start a dev mesh on free ports, show the types, run an example workflow, stop.

    ``heat-demand`` (the default) is one job; ``district-design`` a workflow of steps, whose
    step tree is printed after its result.
    """
    with tempfile.TemporaryDirectory(prefix="workmesh-demo-") as tmp:
        logs = Path(tmp, "logs")
        logs.mkdir()
        cc.out.print("[bold]starting a dev mesh[/bold] (embedded registry, results, gateway, example workers) ...")
        cc.out.print(f"  {OFF_NOTICE}")
        with DevMesh(data_dir=Path(tmp), log_dir=logs) as mesh:
            for line in mesh.describe():
                cc.out.print("  " + line)
            cc.out.print(f"  web console: {mesh.console_url} (while the demo runs)")
            stub = cc.gateway_stub(mesh.gateway_address)
            show_types(stub, as_json=False)
            params = {**DEMO_PARAMS.get(args.workflow, {}), **cc.parse_pairs(args.param, "--param")}
            cc.out.print(f"[bold]submitting {args.workflow}[/bold] {params}")
            reply = cc.submit(stub, args.workflow, params, timeout=None, key="", labels={})
            code = follow(stub, reply.job.job_id)
            job = stub.GetJob(gateway_pb2.GetJobRequest(job_id=reply.job.job_id), timeout=10)
            nodes = step_tree(stub, job)
            if nodes:
                cc.out.print("[bold]steps[/bold]")
                print_tree(cc.out, job, nodes)
            cc.out.print("[bold]stopping the mesh[/bold]")
        return code
