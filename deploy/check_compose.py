"""Check docker-compose.yml offline: the compose tool accepts it, and our image's commands are real.

For every service run from the workmesh image (built from deploy/Dockerfile, or using the image
such a service builds), its ``command:`` and any ``workmesh`` healthcheck must parse with the
``workmesh`` CLI's own argument parser (``workmesh.services.cli.build_parser``), and every worker
target ``module:attr`` must load as a worker (``workmesh.workers.load_worker``, as ``workmesh
worker`` does). Every such service runs with authentication and TLS on (``check_security``).
The Dockerfile's COPY sources must exist. No Docker engine is needed.

Usage: ``python deploy/check_compose.py [COMPOSE_FILE] [--require-compose-tool]``. Prints one line per
problem and exits 1 if there is any; exits 0 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = "deploy/Dockerfile"


def compose_tool() -> list[str] | None:
    """The compose command available here: ``docker-compose`` (v1) or ``docker compose`` (v2)."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def check_with_compose_tool(path: Path, tool: Sequence[str]) -> list[str]:
    """Run ``<tool> -f path config -q`` (schema, interpolation, references); its errors as problems."""
    proc = subprocess.run(
        [*tool, "-f", str(path), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=path.parent,
        check=False,
        timeout=120,
    )
    if proc.returncode == 0:
        return []
    output = (proc.stderr or proc.stdout).strip() or f"exit status {proc.returncode}"
    return [f"{path.name}: `{' '.join(tool)} config -q` failed: {output}"]


def load_compose(path: Path) -> dict[str, Any]:
    try:
        import yaml
    except ImportError as exc:
        raise SystemExit("check_compose.py needs PyYAML: pip install pyyaml") from exc
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise ValueError(f"{path}: no `services:` mapping")
    return data


def _built_here(service: Mapping[str, Any]) -> bool:
    build = service.get("build")
    if isinstance(build, Mapping):
        return str(build.get("dockerfile", "Dockerfile")).endswith(DOCKERFILE)
    return False


def workmesh_services(compose: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Services that run our image: built from deploy/Dockerfile, or naming an image such a service builds."""
    services = compose["services"]
    images = {s.get("image") for s in services.values() if _built_here(s) and s.get("image")}
    return {name: s for name, s in services.items() if _built_here(s) or s.get("image") in images}


def _argv(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [str(part) for part in value]


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> tuple[argparse.Namespace | None, str]:
    # argparse reports by printing and exiting; keep the message, not the exit.
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            return parser.parse_args(list(argv)), ""
        except SystemExit:
            lines = [line for line in err.getvalue().splitlines() if line.strip()]
            return None, lines[-1] if lines else "not accepted by the parser"


def subcommands(parser: argparse.ArgumentParser) -> list[str]:
    """Top-level subcommand names of `parser`."""
    for action in parser._actions:  # noqa: SLF001 - argparse offers no public accessor
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return sorted(action.choices)
    return []


def check_cli_argv(where: str, argv: Sequence[str], parser: argparse.ArgumentParser) -> list[str]:
    """Problems with running ``workmesh <argv>``: unknown subcommand, bad options, bad worker target."""
    if not argv:
        return [f"{where}: no command (the image's default only prints help)"]
    known = subcommands(parser)
    if argv[0] not in known:
        return [f"{where}: {argv[0]!r} is not a workmesh subcommand (known: {', '.join(known)})"]
    args, error = _parse(parser, argv)
    if args is None:
        return [f"{where}: `workmesh {' '.join(argv)}` is rejected by the CLI: {error}"]
    target = getattr(args, "target", None) if argv[0] == "worker" else None
    if target is not None:
        return check_worker_target(where, target)
    return []


def check_worker_target(where: str, target: str) -> list[str]:
    """Problems loading worker target `target` exactly as ``workmesh worker`` does."""
    from workmesh.workers import load_worker

    try:
        load_worker(target)
    except Exception as exc:  # noqa: BLE001 - any failure to load is the finding
        return [f"{where}: worker target {target!r} does not load: {type(exc).__name__}: {exc}"]
    return []


def _healthcheck_argv(service: Mapping[str, Any]) -> list[str] | None:
    test = (service.get("healthcheck") or {}).get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    if not test or test[0] not in ("CMD", "CMD-SHELL"):
        return None
    argv = shlex.split(test[1]) if test[0] == "CMD-SHELL" and len(test) == 2 else [str(t) for t in test[1:]]
    return argv[1:] if argv and Path(argv[0]).name == "workmesh" else None


def check_commands(compose: Mapping[str, Any], parser: argparse.ArgumentParser) -> list[str]:
    """Problems with the commands and workmesh healthchecks of our image's services."""
    ours = workmesh_services(compose)
    if not ours:
        return [f"no service is built from {DOCKERFILE}"]
    problems: list[str] = []
    for name, service in sorted(ours.items()):
        if "entrypoint" in service:
            problems.append(f"services.{name}: overrides the image's entrypoint (workmesh-entrypoint)")
        problems += check_cli_argv(f"services.{name}.command", _argv(service.get("command")), parser)
        health = _healthcheck_argv(service)
        if health is not None:
            problems += check_cli_argv(f"services.{name}.healthcheck", health, parser)
    return problems


ON = ("1", "true", "yes", "on")
KEY_SOURCES = ("WORKMESH_JWKS_URL", "WORKMESH_JWKS_FILE", "WORKMESH_JWT_SECRET")


def _environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _mount_targets(service: Mapping[str, Any]) -> list[str]:
    targets = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, Mapping):
            targets.append(str(volume.get("target", "")))
        else:
            # `${VAR:-default}` holds colons of its own: drop it before splitting source:target:mode.
            parts = re.sub(r"\$\{[^}]*\}", "SOURCE", str(volume)).split(":")
            targets.append(parts[1] if len(parts) > 1 else parts[0])
    return [t for t in targets if t]


def check_security(compose: Mapping[str, Any]) -> list[str]:
    """Authentication and TLS are on for every service of our image: ``WORKMESH_AUTH`` on, a
    JWT key source named, ``WORKMESH_TLS_CERT``/``KEY``/``CA`` set to files under a mounted
    volume; the gateway and the results service share ``WORKMESH_SERIES_KEY``."""
    problems: list[str] = []
    for name, service in sorted(workmesh_services(compose).items()):
        env, where = _environment(service), f"services.{name}.environment"
        if env.get("WORKMESH_AUTH", "").strip().lower() not in ON:
            problems.append(f"{where}: WORKMESH_AUTH must be on (the production set authenticates callers)")
        if not any(k in env for k in KEY_SOURCES):
            problems.append(f"{where}: none of {', '.join(KEY_SOURCES)} is passed (no way to verify JWTs)")
        if "WORKMESH_SERIES_KEY" not in env:
            problems.append(f"{where}: WORKMESH_SERIES_KEY is not passed (series write capabilities)")
        targets = _mount_targets(service)
        for var in ("WORKMESH_TLS_CERT", "WORKMESH_TLS_KEY", "WORKMESH_TLS_CA"):
            path = env.get(var, "").strip()
            if not path:
                problems.append(f"{where}: {var} must be set (the production set serves and calls over TLS)")
            elif not any(path.startswith(t.rstrip("/") + "/") for t in targets):
                problems.append(f"services.{name}: {var}={path} is not under a mounted volume or secret")
    return problems


def check_dockerfile(path: Path, context: Path = REPO) -> list[str]:
    """Every local COPY/ADD source of the Dockerfile exists in the build context (the repository)."""
    problems: list[str] = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        words = line.split()
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        sources = [w for w in words[1:-1] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]):
            continue
        for source in sources:
            if not list(context.glob(source.rstrip("/"))):
                shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
                problems.append(f"{shown}:{number}: COPY source {source!r} does not exist")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("compose_file", nargs="?", default=str(REPO / "docker-compose.yml"))
    options.add_argument(
        "--require-compose-tool",
        action="store_true",
        help="fail (rather than skip that step) when no compose tool is installed",
    )
    args = options.parse_args(argv)
    path = Path(args.compose_file).resolve()

    problems: list[str] = []
    tool = compose_tool()
    if tool is None:
        message = "no docker-compose / docker compose here: schema check skipped"
        if args.require_compose_tool:
            problems.append(message)
        else:
            print(f"note: {message}")
    else:
        problems += check_with_compose_tool(path, tool)

    try:
        from workmesh.services.cli import build_parser
    except ImportError as exc:
        problems.append(f"cannot read the CLI's subcommands: workmesh.services.cli.build_parser: {exc}")
    else:
        compose = load_compose(path)
        problems += check_commands(compose, build_parser())
        problems += check_security(compose)
    problems += check_dockerfile(REPO / DOCKERFILE)

    for problem in problems:
        print(problem)
    if not problems:
        print(f"{path.name}: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
