"""The building blocks of the OpenAPI document (``_openapi.py``): schemas from the proto
descriptors, following protobuf's JSON mapping as ``json_format`` writes and reads it, and the
shapes shared by operations (errors as google.rpc.Status, SSE responses, path and query
parameters)."""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

F = FieldDescriptor
_INTS = {F.TYPE_INT32, F.TYPE_SINT32, F.TYPE_SFIXED32, F.TYPE_UINT32, F.TYPE_FIXED32}
_LONGS = {F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64, F.TYPE_UINT64, F.TYPE_FIXED64}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "additionalProperties": True,
    },
}
_STATUS: dict[str, Any] = {
    "type": "object",
    "description": "google.rpc.Status: the gRPC code and message of the call",
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string"},
        "details": {"type": "array", "items": {"$ref": "#/components/schemas/google.protobuf.Any"}},
    },
    "required": ["code", "message"],
}


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, dict] = {
            "google.rpc.Status": _STATUS,
            "google.protobuf.Any": _WELL_KNOWN["google.protobuf.Any"],
        }

    def ref(self, descriptor: Descriptor) -> dict:
        name = descriptor.full_name
        if name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[name])
        if name not in self.components:
            self.components[name] = {}  # placeholder: messages may refer to each other
            self.components[name] = self._message(descriptor)
        return {"$ref": f"#/components/schemas/{name}"}

    def _message(self, descriptor: Descriptor) -> dict:
        properties = {field.json_name: self.field(field) for field in descriptor.fields}
        return {"type": "object", "properties": properties, "additionalProperties": False}

    def field(self, field: FieldDescriptor) -> dict:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = field.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self.scalar(value)}
        schema = self.scalar(field)
        if field.is_repeated:
            return {"type": "array", "items": schema}
        return schema

    def scalar(self, field: FieldDescriptor) -> dict:
        kind = field.type
        if kind == F.TYPE_MESSAGE and field.message_type is not None:
            return self.ref(field.message_type)
        if kind == F.TYPE_ENUM and field.enum_type is not None:
            return {"type": "string", "enum": [v.name for v in field.enum_type.values]}
        if kind in _INTS:
            return {"type": "integer", "format": "int32"}
        if kind in _LONGS:
            return {"type": "string", "pattern": r"^-?[0-9]+$", "format": "int64"}
        if kind in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
            return {"type": "number"}
        if kind == F.TYPE_BOOL:
            return {"type": "boolean"}
        if kind == F.TYPE_BYTES:
            return {"type": "string", "format": "byte"}
        return {"type": "string"}


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def _errors(*codes: int) -> dict:
    text = {
        400: "a bad request (INVALID_ARGUMENT, FAILED_PRECONDITION)",
        403: "not permitted (PERMISSION_DENIED)",
        404: "not found (NOT_FOUND)",
        405: "method not allowed",
        413: "body larger than the limit (RESOURCE_EXHAUSTED)",
        429: "a limit was reached (RESOURCE_EXHAUSTED)",
        503: "a dependency is unavailable (UNAVAILABLE)",
    }
    status = _json({"$ref": "#/components/schemas/google.rpc.Status"})
    return {str(code): {"description": text[code], "content": status} for code in codes}


def _sse(data: dict, names: list[str], description: str, *, ids: bool) -> dict:
    """A text/event-stream response: each event as schemathesis and EventSource parse it."""
    event: dict[str, Any] = {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"type": "string", "enum": [*names, "error"]},
            "data": {
                "type": "string",
                "description": "JSON: the message below, or a google.rpc.Status for an error event",
                "x-json-schema": data,
            },
        },
    }
    if ids:
        event["properties"]["id"] = {
            "type": "string",
            "pattern": "^[0-9]+$",
            "description": "the event seq; send it back as Last-Event-ID",
        }
    return {"description": description, "content": {"text/event-stream": {"schema": event}}}


def _path_id() -> dict:
    return {
        "name": "job_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[^/:]+$", "minLength": 1},
    }


def _query(name: str, schema: dict, description: str = "", *, required: bool = False) -> dict:
    param = {"name": name, "in": "query", "required": required, "schema": schema}
    if schema.get("type") == "array":
        param.update(style="form", explode=True)
    if description:
        param["description"] = description
    return param
