"""The security rules of deploy/check_k8s.py: every workmesh service authenticates and speaks TLS.

As ``check_compose.check_security`` holds the compose set to them, this holds the Kubernetes
manifests: the gateway and the results service run with ``WORKMESH_AUTH`` on, a JWT key source and
``WORKMESH_SERIES_KEY``; every workmesh container serves and calls over TLS with
``WORKMESH_TLS_CERT``/``KEY``/``CA`` files from a mounted Secret that has them; workers require
client certificates (``WORKMESH_TLS_CLIENT_AUTH``, mutual TLS with the gateway); no probe speaks
plaintext gRPC (the kubelet's ``grpc`` probe has no TLS); no Service port is declared plaintext
HTTP/2 (``kubernetes.io/h2c``) and an Ingress to a workmesh Service speaks ``GRPCS`` and verifies it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from check_compose import KEY_SOURCES, ON

TLS_FILES = ("WORKMESH_TLS_CERT", "WORKMESH_TLS_KEY", "WORKMESH_TLS_CA")
AUTHENTICATING = ("gateway", "results")
PLAINTEXT_PROTOCOLS = {"kubernetes.io/h2c", "http"}
NGINX = "nginx.ingress.kubernetes.io/"


def _on(value: str | None) -> bool:
    return str(value or "").strip().lower() in ON


def check_container(
    where: str,
    role: str,
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    env: Mapping[str, str],
    secrets: Mapping[str, Mapping[str, Any]],
) -> list[str]:
    """Problems with the authentication and TLS of one workmesh container running `role`
    (its first argument: gateway, results, worker, ...); `env` is everything it gets, a value
    taken from a reference being ""."""
    problems: list[str] = []
    if role in AUTHENTICATING:
        if not _on(env.get("WORKMESH_AUTH")):
            problems.append(f"{where}: WORKMESH_AUTH must be on (the {role} authenticates its callers)")
        if not any(k in env for k in KEY_SOURCES):
            problems.append(f"{where}: none of {', '.join(KEY_SOURCES)} is passed (no way to verify JWTs)")
        if "WORKMESH_SERIES_KEY" not in env:
            problems.append(f"{where}: WORKMESH_SERIES_KEY is not passed (series write capabilities)")
    if role == "worker" and not _on(env.get("WORKMESH_TLS_CLIENT_AUTH")):
        problems.append(
            f"{where}: WORKMESH_TLS_CLIENT_AUTH must be on (mutual TLS: only the gateway may call a worker)"
        )
    files = _mounted_files(pod, container, secrets)
    for var in TLS_FILES:
        path = env.get(var, "").strip()
        if not path:
            problems.append(f"{where}: {var} must be set (every workmesh service serves and calls over TLS)")
        elif path not in files:
            problems.append(f"{where}: {var}={path} is no file of a Secret mounted in the container")
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        if "grpc" in (container.get(probe) or {}):
            problems.append(
                f"{where}: {probe} is a grpc probe, which speaks plaintext: use `workmesh health` (exec), "
                "which goes over TLS"
            )
    return problems


def _mounted_files(
    pod: Mapping[str, Any], container: Mapping[str, Any], secrets: Mapping[str, Mapping[str, Any]]
) -> set[str]:
    """Paths of the files the container sees from Secret volumes of Secrets that exist here."""
    volumes = {v.get("name"): v for v in pod.get("volumes", [])}
    files: set[str] = set()
    for mount in container.get("volumeMounts", []):
        source = (volumes.get(mount.get("name")) or {}).get("secret")
        doc = secrets.get((source or {}).get("secretName"))
        if doc is None:
            continue
        keys = {**(doc.get("data") or {}), **(doc.get("stringData") or {})}
        items = source.get("items")
        names = [i["path"] for i in items if i.get("key") in keys] if items else list(keys)
        base = str(mount.get("mountPath", "")).rstrip("/")
        if mount.get("subPath"):
            if mount["subPath"] in names:
                files.add(base)
            continue
        files.update(f"{base}/{name}" for name in names)
    return files


def check_network(docs: Iterable[Mapping[str, Any]], workmesh_labels: list[Mapping[str, str]]) -> list[str]:
    """Problems with Services and Ingresses in front of workmesh pods (`workmesh_labels`: the pod
    labels of every workmesh Deployment): no plaintext protocol declared, the ingress re-encrypts."""
    docs = list(docs)
    problems: list[str] = []
    ours: set[str] = set()
    for doc in docs:
        if doc.get("kind") != "Service":
            continue
        selector = (doc.get("spec") or {}).get("selector") or {}
        if not selector or not any(selector.items() <= labels.items() for labels in workmesh_labels):
            continue
        name = (doc.get("metadata") or {}).get("name")
        ours.add(name)
        for port in doc["spec"].get("ports", []):
            if str(port.get("appProtocol", "")).lower() in PLAINTEXT_PROTOCOLS:
                problems.append(
                    f"Service/{name} port {port.get('name') or port.get('port')}: appProtocol "
                    f"{port['appProtocol']} declares plaintext; workmesh serves gRPC over TLS"
                )
    for doc in docs:
        if doc.get("kind") != "Ingress":
            continue
        backends = {
            ((path.get("backend") or {}).get("service") or {}).get("name")
            for rule in (doc.get("spec") or {}).get("rules", [])
            for path in (rule.get("http") or {}).get("paths", [])
        }
        if not backends & ours:
            continue
        where = f"Ingress/{(doc.get('metadata') or {}).get('name')}"
        notes = (doc.get("metadata") or {}).get("annotations") or {}
        if notes.get(NGINX + "backend-protocol", "HTTP").upper() != "GRPCS":
            problems.append(f"{where}: {NGINX}backend-protocol must be GRPCS (the gateway serves TLS only)")
        if not _on(notes.get(NGINX + "proxy-ssl-verify")) or not notes.get(NGINX + "proxy-ssl-secret"):
            problems.append(
                f"{where}: verify the gateway's certificate ({NGINX}proxy-ssl-verify on, proxy-ssl-secret with the CA)"
            )
    return problems
