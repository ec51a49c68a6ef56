"""Check the Kubernetes manifests of deploy/k8s offline, the way check_compose.py checks compose.

For the base and every overlay (each directory with a kustomization.yaml under deploy/k8s):

- render it with ``kubectl kustomize`` (without kubectl, each resource file of the
  kustomization is checked as it is, and a note says the overlay was not rendered);
- validate every manifest against the Kubernetes JSON schemas that the ``kubernetes-validate``
  package ships (strict: unknown fields are errors; no network), and KEDA ScaledObjects
  against ``deploy/k8s/schemas/scaledobject-keda-v1alpha1.json``;
- for every container of the workmesh image: its ``args`` and every ``workmesh`` exec probe parse
  with the CLI's own parser (and worker targets load, as ``workmesh worker`` loads them), and
  every environment variable it gets (``env``, and the keys of ``envFrom`` ConfigMaps) is one the
  workmesh code reads, one the OpenTelemetry SDK reads, one the image's entrypoint reads, or one
  only used inside another value as ``$(NAME)``; the ConfigMaps and Secrets it refers to exist;
- gateway, results and workers advertise their pod IP (``WORKMESH_*_ADVERTISE`` = ``$(POD_IP)``
  from a ``status.podIP`` fieldRef): what they register in Consul is where they are reached;
- workers: a preStop hook, and terminationGracePeriodSeconds above the drain plus cancel grace;
- authentication and TLS are on for every workmesh service, mutual TLS on workers, no probe,
  Service or Ingress speaks plaintext to them (``k8s_security``, the rules of check_compose's
  ``check_security`` for Kubernetes);
- ScaledObjects: the target Deployment exists, every metric name in a Prometheus query is one the
  workmesh instruments really export through the collector's Prometheus exporter, and every
  ``workflow_type="..."`` is a type the target's worker serves.

Usage: ``python deploy/check_k8s.py [--kubernetes-version 1.30]``. Prints one line per problem
and exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from check_compose import REPO, check_cli_argv
from k8s_security import check_container, check_network

from workmesh.services.core.durations import parse_duration

K8S = REPO / "deploy" / "k8s"
KEDA_SCHEMA = K8S / "schemas" / "scaledobject-keda-v1alpha1.json"
SOURCES = ("services", "registry", "workers")
ENV_NAME = re.compile(r"^(WORKMESH|CONSUL|INFLUX|OTEL|DATABASE)_[A-Z0-9_]+$")
POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
# The variable each registering service advertises itself with.
ADVERTISE = {
    "gateway": "WORKMESH_GATEWAY_ADVERTISE",
    "results": "WORKMESH_RESULTS_ADVERTISE",
    "worker": "WORKMESH_WORKER_ADVERTISE",
}
DRAIN_DEFAULTS = {"WORKMESH_WORKER_DRAIN_GRACE": 30.0, "WORKMESH_WORKER_CANCEL_GRACE": 5.0}


# -- rendering -------------------------------------------------------------------------------------
def kustomizations(root: Path = K8S) -> list[Path]:
    return sorted(p.parent for p in root.rglob("kustomization.yaml"))


def render(directory: Path) -> tuple[list[dict[str, Any]], str]:
    """The manifests of a kustomization, and a note when they could not be rendered in full."""
    import yaml

    if shutil.which("kubectl"):
        done = subprocess.run(
            ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise ValueError(f"`kubectl kustomize {directory}` failed: {done.stderr.strip()}")
        return [d for d in yaml.safe_load_all(done.stdout) if d], ""
    docs = []
    for path in _resource_files(directory):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs, f"{directory.relative_to(REPO)}: no kubectl here: resource files checked unrendered"


def _resource_files(directory: Path) -> Iterator[Path]:
    import yaml

    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    for entry in spec.get("resources", []):
        target = (directory / entry).resolve()
        yield from _resource_files(target) if target.is_dir() else [target]


# -- schemas ---------------------------------------------------------------------------------------
def check_schemas(docs: Iterable[Mapping[str, Any]], version: str) -> list[str]:
    import jsonschema
    import kubernetes_validate

    keda = json.loads(KEDA_SCHEMA.read_text())
    problems = []
    for doc in docs:
        where = _name(doc)
        try:
            if doc.get("kind") == "ScaledObject":
                jsonschema.Draft202012Validator(keda).validate(doc)
            else:
                kubernetes_validate.validate(dict(doc), version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{where}: no schema for {doc.get('apiVersion')} {doc.get('kind')}")
        except jsonschema.ValidationError as exc:
            path = ".".join(str(p) for p in exc.absolute_path)
            problems.append(f"{where}: {path or '(root)'}: {exc.message}")
    return problems


# -- what the code reads ---------------------------------------------------------------------------
def known_env() -> set[str]:
    """Variables the workmesh code reads (string arguments of calls and subscripts in its
    sources), the OpenTelemetry SDK's, and those the image's entrypoint derives others from."""
    names: set[str] = set()
    for folder in SOURCES:
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                args = (
                    node.args if isinstance(node, ast.Call) else [node.slice] if isinstance(node, ast.Subscript) else []
                )
                names.update(
                    a.value
                    for a in args
                    if isinstance(a, ast.Constant) and isinstance(a.value, str) and ENV_NAME.match(a.value)
                )
    import opentelemetry.sdk.environment_variables as otel

    names.update(n for n in vars(otel) if n.startswith("OTEL_"))
    names.update(re.findall(r":=\$\{([A-Z_]+)", (REPO / "deploy" / "entrypoint.sh").read_text()))
    return names


def prometheus_name(name: str, unit: str, monotonic_sum: bool, gauge: bool) -> str:
    """The name the collector's Prometheus exporter gives an OTLP metric (its normalisation:
    tokens of the name, the unit unless it is an annotation in braces, _total for counters)."""
    units = {"ms": "milliseconds", "s": "seconds", "By": "bytes", "1": "", "%": "percent"}
    tokens = [t for t in re.split(r"[^A-Za-z0-9]+", name) if t]
    main = unit.split("/", 1)[0].strip()
    if main and "{" not in main and "}" not in main:
        suffix = units.get(main, main)
        if suffix and suffix not in tokens:
            tokens.append(suffix)
    if monotonic_sum:
        tokens = [t for t in tokens if t != "total"] + ["total"]
    if unit == "1" and gauge:
        tokens = [t for t in tokens if t != "ratio"] + ["ratio"]
    return "_".join(tokens)


def exported_metrics() -> set[str]:
    """Prometheus names of every instrument of the gateway and the worker, collected for real
    from an in-memory reader (histograms also as their _bucket/_sum/_count series)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import Gauge, Histogram, InMemoryMetricReader, Sum

    from workmesh.services.core.telemetry import GatewayMetrics, WorkerMetrics

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    gateway = GatewayMetrics(provider.get_meter("workmesh.gateway"))
    gateway.observe_jobs(lambda: {"QUEUED": 1})
    gateway.observe_queue_depth(lambda: {"t": 1})
    gateway.observe_in_flight(lambda: {"i": 1})
    gateway.job_transition("QUEUED", "t")
    gateway.dispatch_latency(1.0, "t")
    worker = WorkerMetrics("i", provider.get_meter("workmesh.worker"))
    worker.observe(lambda: {"t": 1}, lambda: 1)
    worker.job_finished("t", "SUCCEEDED")
    names = set()
    for resource in reader.get_metrics_data().resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                data = metric.data
                base = prometheus_name(
                    metric.name, metric.unit or "", isinstance(data, Sum) and data.is_monotonic, isinstance(data, Gauge)
                )
                names.add(base)
                if isinstance(data, Histogram):
                    names.update(f"{base}_{part}" for part in ("bucket", "sum", "count"))
    provider.shutdown()
    return names


# -- the workmesh containers -----------------------------------------------------------------------
def _name(doc: Mapping[str, Any]) -> str:
    return f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"


def _pod_spec(doc: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if doc.get("kind") not in POD_KINDS:
        return None
    return ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}


def _ours(container: Mapping[str, Any]) -> bool:
    image = str(container.get("image", "")).rsplit("@", 1)[0]
    return image.rsplit("/", 1)[-1].split(":", 1)[0] == "workmesh"


def _by_kind(docs: Iterable[Mapping[str, Any]], kind: str) -> dict[str, Mapping[str, Any]]:
    return {(d.get("metadata") or {}).get("name"): d for d in docs if d.get("kind") == kind}


def check_containers(docs: list[Mapping[str, Any]], parser: argparse.ArgumentParser, env_names: set[str]) -> list[str]:
    problems: list[str] = []
    maps, secrets = _by_kind(docs, "ConfigMap"), _by_kind(docs, "Secret")
    found = False
    for doc in docs:
        pod = _pod_spec(doc)
        for container in (pod or {}).get("containers", []):
            if not _ours(container):
                continue
            found = True
            where = f"{_name(doc)} container {container.get('name')}"
            if "command" in container:
                problems.append(f"{where}: overrides the image's entrypoint (workmesh-entrypoint)")
            args = [str(a) for a in container.get("args", [])]
            problems += check_cli_argv(f"{where} args", args, parser)
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                command = ((container.get(probe) or {}).get("exec") or {}).get("command")
                if command and Path(command[0]).name == "workmesh":
                    problems += check_cli_argv(f"{where} {probe}", command[1:], parser)
            env = _environment(container, maps, secrets, where, problems)
            problems += _unknown_env(where, env, env_names)
            if args[:1] == ["worker"]:
                problems += _check_drain(where, pod, container, env)
            if args[:1] and args[0] in ADVERTISE:
                problems += _check_advertise(where, container, ADVERTISE[args[0]])
            problems += check_container(where, args[0] if args else "", pod, container, env, secrets)
    if not found:
        problems.append("no container runs the workmesh image")
    labels = [
        ((d["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
        for d in docs
        if any(_ours(c) for c in (_pod_spec(d) or {}).get("containers", []))
    ]
    return problems + check_network(docs, labels)


def _environment(
    container: Mapping[str, Any], maps: Mapping[str, Any], secrets: Mapping[str, Any], where: str, problems: list[str]
) -> dict[str, str]:
    """Name → value ("" when it comes from a reference) of everything the container gets."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef") or source.get("secretRef") or {}
        pool = maps if "configMapRef" in source else secrets
        doc = pool.get(ref.get("name"))
        if doc is None:
            problems.append(f"{where}: envFrom refers to a missing {ref.get('name')!r}")
            continue
        env.update({k: str(v) for k, v in {**(doc.get("data") or {}), **(doc.get("stringData") or {})}.items()})
    for item in container.get("env", []):
        env[item["name"]] = str(item.get("value", ""))
        ref = item.get("valueFrom") or {}
        for kind, pool in (("secretKeyRef", secrets), ("configMapKeyRef", maps)):
            if kind in ref:
                doc = pool.get(ref[kind].get("name"))
                keys = {**((doc or {}).get("data") or {}), **((doc or {}).get("stringData") or {})}
                if ref[kind].get("key") not in keys:
                    problems.append(
                        f"{where}: env {item['name']} refers to a missing {kind} "
                        f"{ref[kind].get('name')}/{ref[kind].get('key')}"
                    )
    return env


def _unknown_env(where: str, env: Mapping[str, str], known: set[str]) -> list[str]:
    # Helpers such as POD_IP exist only to be expanded into another variable as $(POD_IP).
    expanded = {name for value in env.values() for name in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", value)}
    return [
        f"{where}: env {name} is read by no workmesh code"
        for name in sorted(env)
        if name not in known and name not in expanded
    ]


def _check_advertise(where: str, container: Mapping[str, Any], variable: str) -> list[str]:
    """A service that registers itself must advertise its pod IP: Consul's checks and the gateway
    dial that address, and neither 127.0.0.1 nor the pod name (the entrypoint's default) reaches it."""
    items = {item["name"]: item for item in container.get("env", [])}
    value = str(items.get(variable, {}).get("value", ""))
    helper = re.fullmatch(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", value)
    source = items.get(helper.group(1), {}) if helper else {}
    if ((source.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath") != "status.podIP":
        return [f"{where}: set {variable} to the pod IP ($(POD_IP), a fieldRef to status.podIP); got {value!r}"]
    return []


def _check_drain(where: str, pod: Mapping[str, Any], container: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    problems = []
    # As the worker reads them: durations ("30", "30s", "1m").
    grace = {k: parse_duration(env[k]) if env.get(k) else default for k, default in DRAIN_DEFAULTS.items()}
    needed = sum(grace.values())
    period = pod.get("terminationGracePeriodSeconds", 30)
    if period <= needed:
        problems.append(
            f"{where}: terminationGracePeriodSeconds {period} must exceed the drain grace plus the "
            f"cancel grace ({needed:g} s)"
        )
    if not ((container.get("lifecycle") or {}).get("preStop")):
        problems.append(f"{where}: a worker needs a preStop hook that drains it")
    return problems


def check_scaling(docs: list[Mapping[str, Any]], metrics: set[str]) -> list[str]:
    from workmesh.workers import load_worker

    problems = []
    deployments = _by_kind(docs, "Deployment")
    for doc in docs:
        if doc.get("kind") != "ScaledObject":
            continue
        where = _name(doc)
        spec = doc["spec"]
        target = deployments.get(spec["scaleTargetRef"]["name"])
        if target is None:
            problems.append(f"{where}: scaleTargetRef {spec['scaleTargetRef']['name']!r} is no Deployment here")
            continue
        served: set[str] = set()
        for container in _pod_spec(target).get("containers", []):
            args = container.get("args", [])
            if _ours(container) and args[:1] == ["worker"] and len(args) > 1:
                served |= set(load_worker(args[1]).definitions)
        for trigger in spec.get("triggers", []):
            query = trigger.get("metadata", {}).get("query", "")
            if trigger.get("type") != "prometheus":
                continue
            for name in sorted(set(re.findall(r"\b(workmesh_[a-z0-9_]+)", query)) - metrics):
                problems.append(
                    f"{where}: {name} is not a metric workmesh exports (known: {', '.join(sorted(metrics))})"
                )
            for wf in sorted(set(re.findall(r'workflow_type\s*=\s*"([^"]+)"', query)) - served):
                problems.append(f"{where}: workflow type {wf!r} is not served by {_name(target)} ({sorted(served)})")
    return problems


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--kubernetes-version", default="1.30", help="schemas of this Kubernetes version")
    args = options.parse_args(argv)
    from workmesh.services.cli import build_parser

    parser, env_names, metrics = build_parser(), known_env(), exported_metrics()
    problems: list[str] = []
    directories = kustomizations()
    if not directories:
        problems.append(f"no kustomization.yaml under {K8S.relative_to(REPO)}")
    for directory in directories:
        shown = directory.relative_to(REPO)
        try:
            docs, note = render(directory)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if note:
            print(f"note: {note}")
        found = [
            f"{shown}: {p}"
            for p in (
                check_schemas(docs, args.kubernetes_version)
                + check_containers(docs, parser, env_names)
                + check_scaling(docs, metrics)
            )
        ]
        problems += found
        if not found:
            print(f"{shown}: {len(docs)} manifests ok")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
