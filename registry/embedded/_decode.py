"""Decoding and validating request bodies of the embedded registry, the way Consul does.

Consul decodes JSON field names case-insensitively and also accepts snake_case spellings
(``deregister_critical_service_after``), so py-consul's lower-case bodies and Go's PascalCase
bodies both work; Meta keys are user data and keep their case. Malformed input becomes
:class:`BadRequest`, which the HTTP layer answers with 400 and the plain-text reason.
"""

from __future__ import annotations

import ipaddress
import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

from workmesh.registry.client._model import meta_problem
from workmesh.services.core.durations import parse_go_duration

STATUSES = ("passing", "warning", "critical")
# Check types Consul knows but the embedded registry does not run.
_OTHER_KINDS = (
    "http",
    "tcp",
    "udp",
    "args",
    "script",
    "h2ping",
    "dockercontainerid",
    "aliasservice",
    "aliasnode",
    "osservice",
)


# Documented Consul fields the embedded registry does not implement, with their "unset" values:
# a request that sets one is refused (400 naming it) instead of having it silently dropped.
_UNSUPPORTED_SERVICE_FIELDS = {
    "kind": "Kind",
    "proxy": "Proxy",
    "connect": "Connect",
    "socketpath": "SocketPath",
    "locality": "Locality",
    "namespace": "Namespace",
    "partition": "Partition",
}
_UNSUPPORTED_CHECK_FIELDS = {
    "outputmaxsize": "OutputMaxSize",
    "successbeforepassing": "SuccessBeforePassing",
    "failuresbeforewarning": "FailuresBeforeWarning",
    "failuresbeforecritical": "FailuresBeforeCritical",
}
_UNSET: tuple[object, ...] = (None, "", 0, False, [], {}, "default")
_MAX_DURATION = (2**63 - 1) / 1e9  # seconds in Go's largest time.Duration


class BadRequest(Exception):
    """A malformed request; ``str(exc)`` is the reason sent back with HTTP 400."""


def _refuse_unsupported(raw: dict[str, Any], fields: dict[str, str], label: str) -> None:
    for key, name in fields.items():
        if raw.get(key) not in _UNSET:
            raise BadRequest(f"{label}{name} is not supported by the embedded registry")


@dataclass(frozen=True)
class CheckDef:
    """One check of a service registration."""

    kind: str  # "grpc" or "ttl"
    check_id: str = ""
    name: str = ""
    status: str | None = None  # None: keep the current status, else critical
    notes: str = ""
    grpc: str = ""
    grpc_use_tls: bool = False
    tls_skip_verify: bool = False  # GRPCUseTLS without verifying the certificate, as Consul does
    tls_server_name: str = ""  # the name to verify the certificate for (default: the host)
    interval: float = 0.0
    timeout: float = 0.0
    ttl: float = 0.0
    deregister_after: float = 0.0  # 0: never reaped
    interval_text: str = ""
    timeout_text: str = ""


@dataclass(frozen=True)
class ServiceDef:
    """A decoded ``PUT /v1/agent/service/register`` body."""

    name: str
    service_id: str
    tags: tuple[str, ...] = ()
    address: str = ""
    port: int = 0
    meta: dict[str, str] = field(default_factory=dict)
    checks: tuple[CheckDef, ...] = ()
    enable_tag_override: bool = False
    tagged_addresses: dict[str, tuple[str, int]] = field(default_factory=dict)
    weights: tuple[int, int] = (1, 1)  # (Passing, Warning), Consul's default


def _fold(obj: dict[str, Any]) -> dict[str, Any]:
    return {key.replace("_", "").lower(): value for key, value in obj.items()}


def load_json(body: bytes) -> Any:
    """Parse a request body; an empty body is ``{}``."""
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Request decode failed: {exc}") from None
    except RecursionError:  # a body nested deeper than Python's parser goes: Go's stops at 10,000
        raise BadRequest("Request decode failed: JSON nested too deeply") from None


def _load_object(body: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """A body that must be a JSON object: (as sent, with folded keys)."""
    obj = load_json(body)
    if not isinstance(obj, dict):
        raise BadRequest("Request decode failed: body must be a JSON object")
    return obj, _fold(obj)


def _duration(raw: dict[str, Any], key: str, label: str) -> tuple[float, str]:
    value = raw.get(key)
    if value in (None, ""):
        return 0.0, ""
    try:
        seconds = parse_go_duration(value)
    except (ValueError, OverflowError) as exc:
        raise BadRequest(f"Request decode failed: {label}: {exc}") from None
    if not math.isfinite(seconds) or abs(seconds) > _MAX_DURATION:
        # Go's time.Duration is int64 nanoseconds: Consul cannot hold more either.
        raise BadRequest(f"Request decode failed: {label}: invalid duration {value!r} (out of range)")
    if seconds < 0:
        raise BadRequest(f"Invalid check: {label} must not be negative")
    return seconds, value if isinstance(value, str) else f"{seconds:g}s"


def _string(raw: dict[str, Any], key: str, label: str) -> str:
    value = raw.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"Request decode failed: {label} must be a string, got {type(value).__name__}")
    return value


def decode_check(obj: Any, label: str = "Check") -> CheckDef | None:
    """Decode one check definition; None for an empty one (Consul ignores those)."""
    if not isinstance(obj, dict):
        raise BadRequest(f"Request decode failed: {label} must be an object")
    raw = _fold(obj)
    if not any(v not in (None, "", 0, False, [], {}) for v in raw.values()):
        return None
    _refuse_unsupported(raw, _UNSUPPORTED_CHECK_FIELDS, f"{label}.")
    status = raw.get("status") or None
    if status is not None and status not in STATUSES:
        raise BadRequest(
            f"Invalid check: {label}.Status must be one of 'passing', 'warning', 'critical', got {status!r}"
        )
    interval, interval_text = _duration(raw, "interval", f"{label}.Interval")
    timeout, timeout_text = _duration(raw, "timeout", f"{label}.Timeout")
    ttl, _ = _duration(raw, "ttl", f"{label}.TTL")
    deregister, _ = _duration(raw, "deregistercriticalserviceafter", f"{label}.DeregisterCriticalServiceAfter")
    common = CheckDef(
        kind="",
        check_id=_string(raw, "checkid", f"{label}.CheckID") or _string(raw, "id", f"{label}.ID"),
        name=_string(raw, "name", f"{label}.Name"),
        status=status,
        notes=_string(raw, "notes", f"{label}.Notes"),
        deregister_after=deregister,
    )
    if raw.get("grpc"):
        if interval <= 0:
            raise BadRequest(f"Invalid check: {label}.Interval must be > 0 for GRPC checks")
        return replace(
            common,
            kind="grpc",
            grpc=_string(raw, "grpc", f"{label}.GRPC"),
            grpc_use_tls=bool(raw.get("grpcusetls")),
            tls_skip_verify=bool(raw.get("tlsskipverify")),
            tls_server_name=_string(raw, "tlsservername", f"{label}.TLSServerName"),
            interval=interval,
            timeout=timeout,
            interval_text=interval_text,
            timeout_text=timeout_text,
        )
    if raw.get("ttl") not in (None, ""):
        if ttl <= 0:
            raise BadRequest(f"Invalid check: {label}.TTL must be > 0 for TTL checks")
        return replace(common, kind="ttl", ttl=ttl)
    other = [k for k in _OTHER_KINDS if raw.get(k)]
    if other:
        raise BadRequest(
            f"Invalid check: {label}: the embedded registry runs GRPC and TTL checks only, not {other[0].upper()}"
        )
    raise BadRequest(f"Invalid check: {label} must define GRPC (with Interval) or TTL")


def decode_service(body: bytes) -> ServiceDef:
    """Decode and validate a service registration body.

    Raises:
        BadRequest: with Consul-style reasons ("Missing service name", "Invalid Service Meta: ...").
    """
    _, raw = _load_object(body)
    name = _string(raw, "name", "Name")
    if not name:
        raise BadRequest("Missing service name")
    tags = raw.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise BadRequest("Request decode failed: Tags must be a list of strings")
    port = _port(raw.get("port"), "Port")
    meta = raw.get("meta") or {}
    if not isinstance(meta, dict):
        raise BadRequest("Request decode failed: Meta must be an object of strings")
    if problem := meta_problem(meta):
        raise BadRequest(f"Invalid Service Meta: {problem}")
    address = _string(raw, "address", "Address")
    if _is_any(address):
        raise BadRequest("Invalid service address")
    _refuse_unsupported(raw, _UNSUPPORTED_SERVICE_FIELDS, "")
    checks: list[CheckDef] = []
    if raw.get("check") is not None and (one := decode_check(raw["check"], "Check")) is not None:
        checks.append(one)
    listed = raw.get("checks") or []
    if not isinstance(listed, list):
        raise BadRequest("Request decode failed: Checks must be a list")
    for i, item in enumerate(listed):
        if (one := decode_check(item, f"Checks[{i}]")) is not None:
            checks.append(one)
    return ServiceDef(
        name=name,
        service_id=_string(raw, "id", "ID") or name,
        tags=tuple(tags),
        address=address,
        port=port,
        meta=dict(meta),
        checks=tuple(checks),
        enable_tag_override=bool(raw.get("enabletagoverride")),
        tagged_addresses=_tagged_addresses(raw.get("taggedaddresses"), address, port),
        weights=_weights(raw.get("weights")),
    )


def _is_any(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_unspecified
    except ValueError:
        return False


def _port(value: Any, label: str) -> int:
    port = value or 0
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise BadRequest(f"Request decode failed: {label} must be an integer 0..65535, got {port!r}")
    return port


def _tagged_addresses(value: Any, address: str, port: int) -> dict[str, tuple[str, int]]:
    """TaggedAddresses plus the defaults Consul adds: lan/wan_ipv4 (or _ipv6) = the service address."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise BadRequest("Request decode failed: TaggedAddresses must be an object")
    out: dict[str, tuple[str, int]] = {}
    for tag, entry in value.items():
        if not isinstance(entry, dict):
            raise BadRequest(f"Request decode failed: TaggedAddresses[{tag!r}] must be an object with Address and Port")
        raw = _fold(entry)
        out[tag] = (
            _string(raw, "address", f"TaggedAddresses[{tag!r}].Address"),
            _port(raw.get("port"), f"TaggedAddresses[{tag!r}].Port"),
        )
    try:
        family = "ipv4" if ipaddress.ip_address(address).version == 4 else "ipv6"
    except ValueError:
        return out
    for tag in (f"lan_{family}", f"wan_{family}"):
        out.setdefault(tag, (address, port))
    return out


def _weights(value: Any) -> tuple[int, int]:
    if value is None:
        return (1, 1)
    if not isinstance(value, dict):
        raise BadRequest("Request decode failed: Weights must be an object")
    raw = _fold(value)
    passing, warning = raw.get("passing", 0), raw.get("warning", 0)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (passing, warning)):
        raise BadRequest("Request decode failed: Weights.Passing and Weights.Warning must be integers")
    # Consul's rules (structs.ValidateWeights).
    if passing < 1:
        raise BadRequest("Invalid Weights: Passing must be greater than 0")
    if warning < 0:
        raise BadRequest("Invalid Weights: Warning must be greater or equal than 0")
    if passing > 65535 or warning > 65535:
        raise BadRequest("Invalid Weights: DNS Weight must be between 0 and 65535")
    return (passing, warning)


def decode_check_registration(body: bytes) -> tuple[CheckDef, str]:
    """Decode a ``PUT /v1/agent/check/register`` body into (check, ServiceID or "").

    The check id defaults to its Name, as in Consul.
    """
    obj, raw = _load_object(body)
    name = _string(raw, "name", "Name")
    if not name:
        raise BadRequest("Missing check name")
    status = raw.get("status")
    if status not in (None, "") and status not in STATUSES:
        raise BadRequest("Bad check status")
    cdef = decode_check(obj, "Check")
    assert cdef is not None  # it has a Name
    if not cdef.check_id:
        cdef = replace(cdef, check_id=name)
    return cdef, _string(raw, "serviceid", "ServiceID")


def decode_check_update(body: bytes) -> tuple[str, str]:
    """Decode a ``PUT /v1/agent/check/update/<id>`` body into (status, output)."""
    _, raw = _load_object(body)
    status = raw.get("status")
    if status not in STATUSES:
        raise BadRequest(f"Invalid check status: {status!r} (must be 'passing', 'warning' or 'critical')")
    return status, _string(raw, "output", "Output")
