"""Round trips per write transaction on PostgreSQL, counted on the wire.

The store talks to a real PostgreSQL through a TCP relay that reads the frontend protocol the
client sends and counts the messages after which the client waits for the server: a simple
``Query`` ('Q'), a ``Sync`` ('S') and a ``Flush`` ('H') — but not a Flush right behind a Sync
or another Flush (the server has flushed already; no new wait). That is the number of round
trips, independent of timing. A group commit of folds (creates, appends, attempt records) must
cost two: BEGIN with the statements, then the event rows with COMMIT (psycopg pipeline mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from tests.fixtures.postgres import PostgresServer
from tests.store.conftest import run
from tests.store.test_store_contract import new_job, progress, status
from workmesh.services.core.errors import FailedPrecondition
from workmesh.services.gateway.store import JobUpdate
from workmesh.services.gateway.store.sql._store import SqlJobStore
from workmesh.v1 import common_pb2 as pb

pytestmark = pytest.mark.postgres

_WAITS = {ord("Q"), ord("S"), ord("H")}
_SSL_REQUEST, _GSS_REQUEST = 80877103, 80877104


class _ClientStream:
    """Parses one connection's frontend messages and counts its round trips."""

    def __init__(self, relay: WireRelay) -> None:
        self._relay = relay
        self._buffer = b""
        self._startup = True
        self._last = 0  # type byte of the previous message

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while True:
            if self._startup:  # length-prefixed, no type byte
                if len(self._buffer) < 8:
                    return
                length, code = struct.unpack("!II", self._buffer[:8])
                if len(self._buffer) < length:
                    return
                self._buffer = self._buffer[length:]
                self._startup = code in (_SSL_REQUEST, _GSS_REQUEST)  # the real startup follows
                continue
            if len(self._buffer) < 5:
                return
            kind = self._buffer[0]
            (length,) = struct.unpack("!I", self._buffer[1:5])
            if len(self._buffer) < 1 + length:
                return
            self._buffer = self._buffer[1 + length :]
            if kind in _WAITS and not (kind == ord("H") and self._last in (ord("S"), ord("H"))):
                self._relay.count()
            self._last = kind


class WireRelay:
    """A TCP relay in front of PostgreSQL counting the round trips of every client connection."""

    def __init__(self, target_port: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._round_trips = 0
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def count(self) -> None:
        with self._lock:
            self._round_trips += 1

    @property
    def round_trips(self) -> int:
        with self._lock:
            return self._round_trips

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._target)
            self._sockets += [client, server]
            stream = _ClientStream(self)
            for args in ((client, server, stream), (server, client, None)):
                thread = threading.Thread(target=self._pump, args=args, daemon=True)
                self._threads.append(thread)
                thread.start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, stream: _ClientStream | None) -> None:
        try:
            while data := source.recv(65536):
                if stream is not None:
                    stream.feed(data)  # counted before it is passed on: before any answer
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
        for thread in self._threads:
            thread.join(timeout=5)


@pytest.fixture
def relayed_url(postgres_server: PostgresServer, postgres_url: str) -> Iterator[tuple[WireRelay, str]]:
    """The test's database through a counting relay (plain TCP: no TLS to read through)."""
    relay = WireRelay(postgres_server.port)
    try:
        url = postgres_url.replace(f":{postgres_server.port}/", f":{relay.port}/")
        yield relay, f"{url}?sslmode=disable&gssencmode=disable"
    finally:
        relay.close()


async def _counted(relay: WireRelay, store: SqlJobStore, work) -> tuple[int, int]:
    """(round trips, commits) of `work`, once the writer is idle again."""
    rt, commits = relay.round_trips, store.commits
    await work
    return relay.round_trips - rt, store.commits - commits


def test_a_write_transaction_costs_two_round_trips(relayed_url: tuple[WireRelay, str]) -> None:
    relay, url = relayed_url

    async def body() -> None:
        async with SqlJobStore(url) as store:
            # Warm: the writer's connection is open and psycopg has prepared the statements.
            warm, _ = await store.create(new_job())
            for i in range(8):
                await store.append(warm.job_id, [progress(i / 10)])

            rt, commits = await _counted(relay, store, store.create(new_job()))
            assert (rt, commits) == (2, 1)
            job, _ = await store.create(new_job())

            rt, commits = await _counted(relay, store, store.append(job.job_id, [progress(0.5)]))
            assert (rt, commits) == (2, 1)

            # The dispatch record: DISPATCHED and the attempt's start, submitted in one loop
            # turn, are one transaction (the writer takes a turn's operations together).
            dispatched = asyncio.gather(
                store.append(
                    job.job_id,
                    [status(pb.JOB_STATUS_DISPATCHED)],
                    JobUpdate(status=pb.JOB_STATUS_DISPATCHED, attempts=1, instance_id="w"),
                ),
                store.start_attempt(job.job_id, 1, "w"),
            )
            rt, commits = await _counted(relay, store, dispatched)
            assert (rt, commits) == (2, 1)

            # RUNNING, the result and SUCCEEDED in one append, then the attempt's end.
            rt, commits = await _counted(
                relay,
                store,
                store.append(
                    job.job_id,
                    [status(pb.JOB_STATUS_RUNNING), status(pb.JOB_STATUS_SUCCEEDED)],
                    JobUpdate(status=pb.JOB_STATUS_SUCCEEDED, result=pb.JobResult()),
                ),
            )
            assert (rt, commits) == (2, 1)
            rt, commits = await _counted(relay, store, store.end_attempt(job.job_id, 1, "succeeded"))
            assert (rt, commits) == (2, 1)

            # A burst of concurrent writers: group commits, each still two round trips.
            jobs = [(await store.create(new_job()))[0].job_id for _ in range(20)]
            burst = asyncio.gather(
                *(store.create(new_job()) for _ in range(100)),
                *(store.append(j, [progress(0.1 * k)]) for j in jobs for k in range(5)),
            )
            rt, commits = await _counted(relay, store, burst)
            assert commits >= 1 and rt == 2 * commits

            # All of it is stored, numbered, as the appends were acknowledged.
            events = await store.events(job.job_id)
            assert [e.seq for e in events] == [1, 2, 3, 4, 5]
            assert (await store.get(job.job_id)).status == pb.JOB_STATUS_SUCCEEDED
            assert [(a.attempt, a.outcome) for a in await store.attempts(job.job_id)] == [(1, "succeeded")]
            assert [len(await store.events(j)) for j in jobs] == [6] * len(jobs)

    run(body())


def test_an_append_to_a_finished_job_takes_one_more_look(relayed_url: tuple[WireRelay, str]) -> None:
    """The second look (why the job was not updated) is the only third round trip."""
    relay, url = relayed_url

    async def body() -> None:
        async with SqlJobStore(url) as store:
            job, _ = await store.create(new_job())
            await store.append(job.job_id, [status(pb.JOB_STATUS_CANCELLED)], JobUpdate(status=pb.JOB_STATUS_CANCELLED))
            for _ in range(6):  # warm, as above
                with pytest.raises(FailedPrecondition):
                    await store.append(job.job_id, [progress(0.5)])
            rt = relay.round_trips
            with pytest.raises(FailedPrecondition, match="already finished"):
                await store.append(job.job_id, [progress(0.5)])
            assert relay.round_trips - rt == 3
            assert [e.seq for e in await store.events(job.job_id)] == [1, 2]

    run(body())
