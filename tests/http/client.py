"""A small HTTP client on http.client for the tests: plain calls and Server-Sent Events."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class SseEvent:
    event: str
    data: dict
    id: str = ""


class Http:
    """Calls to 127.0.0.1:`port`."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"

    def connection(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def call(self, method: str, path: str, body=None, headers: dict | None = None, timeout: float = 30.0) -> Reply:
        conn = self.connection(timeout)
        try:
            raw = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
            head = {"Content-Type": "application/json"} if raw is not None else {}
            conn.request(method, path, body=raw, headers={**head, **(headers or {})})
            response = conn.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            conn.close()

    def get(self, path: str, **kw) -> Reply:
        return self.call("GET", path, **kw)

    def post(self, path: str, body=None, **kw) -> Reply:
        return self.call("POST", path, body, **kw)

    def events(self, path: str, headers: dict | None = None, timeout: float = 60.0) -> Iterator[SseEvent]:
        """The SSE events of `path` until the server ends the stream."""
        conn = self.connection(timeout)
        try:
            conn.request("GET", path, headers={"Accept": "text/event-stream", **(headers or {})})
            response = conn.getresponse()
            if response.status != 200:
                raise AssertionError(f"{path}: {response.status} {response.read()[:300]!r}")
            fields: dict[str, str] = {}
            for raw in response:
                line = raw.decode().rstrip("\n")
                if not line:
                    if "data" in fields:
                        yield SseEvent(fields.get("event", "message"), json.loads(fields["data"]), fields.get("id", ""))
                    fields = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    fields[name] = value
        finally:
            conn.close()
