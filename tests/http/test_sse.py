"""SSE clients that go away free what their stream held: 500 connects and disconnects."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.http.test_api import submit
from tests.support import eventually

pytestmark = pytest.mark.e2e


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _idle(http) -> dict | None:
    health = http.get("/healthz").json()
    return health if health["sseStreams"] == 0 else None


def _connect_and_drop(port: int, path: str) -> None:
    """Open an event stream, read its first bytes, then drop the connection without a word."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
        head = b""
        while b"stream open" not in head:
            chunk = sock.recv(4096)
            assert chunk, head
            head += chunk
        assert head.startswith(b"HTTP/1.1 200"), head[:200]


def test_500_dropped_streams_return_to_baseline(http, mesh):
    gateway = next(p.popen.pid for p in mesh.processes if p.name == "gateway")
    job = submit(http, "sleep", seconds=300.0, steps=300)
    paths = ["/v1/types:watch", f"/v1/jobs/{job['jobId']}/events"]
    try:
        for i in range(100):  # warm-up: first-use allocations are not a leak
            _connect_and_drop(http.port, paths[i % 2])
        idle = eventually(lambda: _idle(http), timeout=20)
        baseline = _rss_kib(gateway)
        for i in range(500):
            _connect_and_drop(http.port, paths[i % 2])
        # Every stream closed, every type watch unsubscribed: nothing held for a client that is gone.
        assert eventually(lambda: _idle(http), timeout=20) == idle
        grown = _rss_kib(gateway) - baseline
        # A stream held per connection would cost well over 20 KiB each (10 MiB for 500).
        assert grown < 4096, f"gateway RSS grew by {grown} KiB over 500 dropped streams"
        # And the streams still work.
        assert next(iter(http.events("/v1/types:watch"))).event == "added"
    finally:
        http.post(f"/v1/jobs/{job['jobId']}:cancel")
