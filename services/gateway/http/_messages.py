"""Protobuf messages to and from HTTP: JSON bodies, query strings, responses.

JSON is protobuf's own mapping (``json_format``): lowerCamelCase names on output, either the
proto or the JSON name accepted on input, int64 as strings, enums by name, Timestamps as RFC 3339.
Every field without presence is printed, so clients never guess a default.
"""

from __future__ import annotations

import json
from typing import TypeVar

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from workmesh.services.gateway.http._calls import invalid

M = TypeVar("M", bound=Message)


def to_dict(message: Message) -> dict:
    """A message as protobuf JSON (a dict ready for ``json.dumps``)."""
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def json_response(message: Message, status: int = 200) -> web.Response:
    return web.json_response(to_dict(message), status=status, dumps=_dumps)


def _dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def _parse_error(exc: json_format.ParseError) -> str:
    # json_format lists every available field after the first line; the first line names the
    # field and the problem.
    return str(exc).split("\n", 1)[0].strip()


def from_dict(value, message: M, where: str = "body") -> M:
    """Fill `message` from decoded JSON; INVALID_ARGUMENT naming the field on any mismatch."""
    if not isinstance(value, dict):
        raise invalid(where, f"must be a JSON object, got {type(value).__name__}")
    try:
        json_format.ParseDict(value, message, ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        raise invalid(where, _parse_error(exc)) from None
    return message


async def read_body(request: web.Request, message: M) -> M:
    """Parse the request's JSON body into `message` (an empty body is an empty message).

    Raises:
        CallError: INVALID_ARGUMENT for malformed JSON, wrong types or unknown fields;
            aiohttp's HTTPRequestEntityTooLarge past the body limit.
    """
    raw = await request.read()
    if not raw.strip():
        return message
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid("body", f"malformed JSON: {exc}") from None
    return from_dict(value, message)


def from_query(request: web.Request, message: M, skip: tuple[str, ...] = ()) -> M:
    """Fill `message` from query parameters named like its fields (repeated: given repeatedly).

    As grpc-gateway does: ``?workflow_type=x&statuses=JOB_STATUS_RUNNING&statuses=...``.
    """
    fields = message.DESCRIPTOR.fields_by_name
    by_json = {f.json_name: f for f in message.DESCRIPTOR.fields}
    value: dict = {}
    for key in request.query:
        if key in skip or key in value:
            continue
        field = fields.get(key) or by_json.get(key)
        if field is None:
            raise invalid(key, f"unknown query parameter; expected one of {', '.join(sorted(fields))}")
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            raise invalid(key, "cannot be given in the query string")
        items = request.query.getall(key)
        if field.is_repeated:
            value[key] = items
        elif len(items) > 1:
            raise invalid(key, "must be given once")
        elif field.type == FieldDescriptor.TYPE_BOOL:
            value[key] = {"true": True, "false": False}.get(items[0], items[0])
        else:
            value[key] = items[0]
    return from_dict(value, message, where="query")
