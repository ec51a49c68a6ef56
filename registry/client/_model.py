"""What workmesh puts into the registry and what it reads back.

Conventions (DESIGN.md): one Consul service per workflow type named ``workmesh-wf-<type>``,
tagged ``workmesh-workflow``; instance ids ``<service name>-<instance id>``; Meta carries
workflow_type, version, capacity and sdk_version.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from workmesh.services.core.durations import parse_go_duration

WORKFLOW_TAG = "workmesh-workflow"
"""Tag carried by every workflow-type service; the gateway watches services with it."""

SERVICE_PREFIX = "workmesh-wf-"

# Consul's limits on service Meta (structs.ValidateServiceMetadata).
META_MAX_PAIRS = 64
META_MAX_KEY = 128
META_MAX_VALUE = 512
_META_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def service_name(workflow_type: str) -> str:
    """The Consul service name of a workflow type: ``workmesh-wf-<type>``."""
    return f"{SERVICE_PREFIX}{workflow_type}"


def meta_problem(meta: Mapping[Any, Any]) -> str | None:
    """Why `meta` breaks Consul's Meta rules, or None when it is valid."""
    if len(meta) > META_MAX_PAIRS:
        return f"at most {META_MAX_PAIRS} key/value pairs allowed, got {len(meta)}"
    for key, value in meta.items():
        if not isinstance(key, str) or not key:
            return "keys must be non-empty strings"
        if len(key) > META_MAX_KEY:
            return f"key {key[:20]!r}...: longer than {META_MAX_KEY} characters"
        if not _META_KEY.match(key):
            return f"key {key!r}: only letters, digits, '-' and '_' allowed"
        if key.startswith("consul-"):
            return f"key {key!r}: the prefix 'consul-' is reserved"
        if not isinstance(value, str):
            return f"key {key!r}: value must be a string"
        if len(value) > META_MAX_VALUE:
            return f"key {key!r}: value longer than {META_MAX_VALUE} characters"
    return None


@dataclass(frozen=True)
class ServiceRegistration:
    """One service instance to keep registered.

    Attributes:
        name: Consul service name (``service_name(type)`` for workflow types).
        service_id: unique instance id, ``<name>-<instance id>`` by convention.
        address: host the instance serves on.
        port: its port.
        tags: Consul tags (``WORKFLOW_TAG`` for workflow types).
        meta: Consul Meta (≤ 64 pairs, keys ``[A-Za-z0-9_-]`` ≤ 128, values ≤ 512 chars).
        grpc_check: ``"host:port/service"`` for a Consul GRPC check on grpc.health.v1, or None.
        check_interval: interval of that check (Go duration).
        grpc_tls: the instance serves TLS: the check sets Consul's ``GRPCUseTLS`` (the agent
            verifies the certificate against its CA, unless `tls_skip_verify`).
        tls_skip_verify: Consul's ``TLSSkipVerify`` for that check.
        tls_server_name: Consul's ``TLSServerName``: the name the certificate is verified for
            instead of the check's host (empty: the host).
        deregister_critical_after: DeregisterCriticalServiceAfter of that check (Go duration).

    Raises:
        ValueError: a field breaks a rule; the message names the field and the rule.
    """

    name: str
    service_id: str
    address: str
    port: int
    tags: tuple[str, ...] = ()
    meta: Mapping[str, str] = field(default_factory=dict, hash=False)
    grpc_check: str | None = None
    check_interval: str = "1s"
    deregister_critical_after: str = "1m"
    grpc_tls: bool = False
    tls_skip_verify: bool = False
    tls_server_name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))
        if not self.name:
            raise ValueError("ServiceRegistration.name: must not be empty")
        if not self.service_id:
            raise ValueError("ServiceRegistration.service_id: must not be empty")
        if not isinstance(self.port, int) or not 0 <= self.port < 65536:
            raise ValueError(f"ServiceRegistration.port: must be 0..65535, got {self.port!r}")
        if problem := meta_problem(self.meta):
            raise ValueError(f"ServiceRegistration.meta: {problem}")
        for attr in ("check_interval", "deregister_critical_after"):
            try:
                seconds = parse_go_duration(getattr(self, attr))
            except ValueError as exc:
                raise ValueError(f"ServiceRegistration.{attr}: {exc}") from None
            if seconds <= 0:
                raise ValueError(f"ServiceRegistration.{attr}: must be > 0")

    def payload(self) -> dict[str, Any]:
        """The body of ``PUT /v1/agent/service/register`` for this instance."""
        body: dict[str, Any] = {
            "Name": self.name,
            "ID": self.service_id,
            "Address": self.address,
            "Port": self.port,
            "Tags": list(self.tags),
            "Meta": dict(self.meta),
        }
        if self.grpc_check:
            # Registered only once the instance serves, so it starts passing: new workflow
            # types become visible at once instead of after the first check interval.
            body["Check"] = {
                "Name": f"gRPC health of {self.service_id}",
                "GRPC": self.grpc_check,
                "Interval": self.check_interval,
                "Status": "passing",
                "DeregisterCriticalServiceAfter": self.deregister_critical_after,
            }
            if self.grpc_tls:
                body["Check"]["GRPCUseTLS"] = True
                body["Check"]["TLSSkipVerify"] = self.tls_skip_verify
                if self.tls_server_name:
                    body["Check"]["TLSServerName"] = self.tls_server_name
        return body


@dataclass(frozen=True)
class Instance:
    """A passing instance of a service, as the registry reports it."""

    service_id: str
    service_name: str
    address: str
    port: int
    tags: tuple[str, ...]
    meta: Mapping[str, str] = field(hash=False)
    checks: tuple[tuple[str, str, str, str], ...] = field(default=(), hash=False)
    """(service id, name, status, output) of its checks and of its node's ("" service id)."""

    @property
    def workflow_type(self) -> str:
        """The workflow type it serves (its ``workflow_type`` Meta), "" if absent."""
        return self.meta.get("workflow_type", "")

    @property
    def target(self) -> str:
        """``host:port`` to dial."""
        return f"{self.address}:{self.port}"

    @classmethod
    def from_health_entry(cls, entry: Mapping[str, Any]) -> Instance:
        """Build from one element of ``GET /v1/health/service/<name>``.

        An empty service address means "the node's address", as in Consul.
        """
        svc = entry["Service"]
        address = svc.get("Address") or (entry.get("Node") or {}).get("Address", "")
        return cls(
            service_id=svc["ID"],
            service_name=svc["Service"],
            address=address,
            port=int(svc.get("Port") or 0),
            tags=tuple(svc.get("Tags") or ()),
            meta=MappingProxyType(dict(svc.get("Meta") or {})),
            checks=tuple(
                (c.get("ServiceID") or "", c.get("Name") or "", c.get("Status") or "", c.get("Output") or "")
                for c in entry.get("Checks") or ()
                if c.get("ServiceID") in ("", None, svc["ID"])
            ),
        )
