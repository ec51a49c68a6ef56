"""The ``workmesh types`` table: workflow types, their versions, capacity, runtime and parameters."""

from __future__ import annotations

from rich.table import Table

from workmesh.services.cli._client import out, print_json, to_dict
from workmesh.services.core.limits import PARAM_TYPE_NAMES
from workmesh.v1 import common_pb2, gateway_pb2


def describe_param(spec: common_pb2.ParamSpec) -> str:
    parts = [f"{spec.name}: {PARAM_TYPE_NAMES.get(spec.type, '?')}"]
    if spec.HasField("default"):
        parts.append(f"= {param_text(spec.default)}")
    elif spec.required:
        parts.append("(required)")
    if spec.HasField("min") or spec.HasField("max"):
        lo = f"{spec.min:g}" if spec.HasField("min") else ""
        hi = f"{spec.max:g}" if spec.HasField("max") else ""
        parts.append(f"[{lo}..{hi}]")
    if spec.allowed:
        parts.append("{" + ", ".join(spec.allowed) + "}")
    if spec.unit:
        parts.append(spec.unit)
    return " ".join(parts)


def param_text(value: common_pb2.ParamValue) -> str:
    kind = value.WhichOneof("kind")
    if kind is None:
        return ""
    if kind == "datetime_value":
        return value.datetime_value.ToJsonString()
    if kind == "duration_value":
        return value.duration_value.ToJsonString()
    if kind == "bytes_value":
        return f"<{len(value.bytes_value)} bytes>"
    return str(getattr(value, kind)).lower() if kind == "bool_value" else str(getattr(value, kind))


def seconds_text(value: float | None) -> str:
    """A runtime for people: 850 ms, 12.5 s, 4m 10s, 2h 05m."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{int(value // 60)}m {int(value % 60):02d}s"
    return f"{int(value // 3600)}h {int(value % 3600 // 60):02d}m"


def typical_runtime(info: gateway_pb2.WorkflowTypeInfo) -> str:
    """The `types` table's runtime column: median of finished runs, with how many."""
    if not info.runtime_runs:
        return "-"
    return f"{seconds_text(info.typical_runtime.ToNanoseconds() / 1e9)} ({info.runtime_runs} runs)"


def show_types(stub, as_json: bool) -> int:
    types = stub.ListWorkflowTypes(gateway_pb2.ListWorkflowTypesRequest(), timeout=10).types
    if as_json:
        print_json([to_dict(t) for t in types])
        return 0
    if not types:
        out.print("no workflow types: no healthy worker is registered")
        return 0
    table = Table("type", "version", "instances", "free/capacity", "typical runtime", "description", "parameters")
    for info in sorted(types, key=lambda t: t.type.name):
        # One row per live version (several during a rolling upgrade), newest first; a gateway
        # from before TypeVersionInfo sends none: then the type's newest declaration alone.
        versions = list(info.versions) or [
            gateway_pb2.TypeVersionInfo(
                version=info.type.version,
                type=info.type,
                healthy_instances=info.healthy_instances,
                capacity=info.capacity,
                free_capacity=info.free_capacity,
            )
        ]
        for index, version in enumerate(versions):
            first = index == 0
            table.add_row(
                info.type.name if first else "",
                version.version,
                "\n".join([str(version.healthy_instances), *version.addresses]),
                f"{version.free_capacity}/{version.capacity}",
                typical_runtime(info) if first else "",
                version.type.description,
                "\n".join(describe_param(p) for p in version.type.params) or "-",
            )
    out.print(table)
    return 0
