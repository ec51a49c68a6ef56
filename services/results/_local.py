"""Local reads: a caller on the service's host gets the Parquet part files instead of the values.

A comparison read of 10 jobs moves 700 MB of one field. Through gRPC, the service decodes the
Parquet pages, copies the values into response messages, gRPC copies them into its slices and the
socket, and the client's gRPC receive copies them again (py-spy: 83% of the client's read in
memcpy under gRPC's receive; the service's time in gRPC framing, packing and decoding). A caller on
the same host can read the files itself: with ``ReadSeriesRequest.local`` the service answers with
a :class:`~workmesh.v1.results_pb2.LocalRead` — where each series is in which file (the catalogue's
rows and regular times) and a ticket — and hands the part files' descriptors over a Unix socket of its own
(SCM_RIGHTS) to whoever presents the ticket. The caller then decodes the one column it wants of
each file, in threads (see :mod:`workmesh.services.clients._local`): one copy of the values.

* Access is unchanged: the ReadSeries call is checked as any other (identity, the job rules,
  NOT_FOUND for a deleted job); the ticket (32 random bytes) is only in its answer, good for one
  use, and expires after :data:`TICKET_TTL_S`. The socket itself gives nothing without one.
* The descriptors are opened while the call is answered, so a compaction or a delete after that
  leaves the read its files (a read already answered, as on the gRPC path).
* Not every read is answered so (:func:`local_plan` returns None, and the call is answered as
  usual): a downsampled one, series with irregular times, a group whose jobs' times differ (the
  service aligns those), a unit the time step does not divide, an InfluxDB store.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import os
import secrets
import socket
import struct
import time
from collections.abc import Sequence
from pathlib import Path

import structlog

from workmesh.services.clients._model import ReadQuery, ns_per
from workmesh.services.core.gcpause import collector_paused
from workmesh.services.results.stores._parquet import ParquetStore
from workmesh.services.results.stores._tombstones import TombstonedStore, deleted_error
from workmesh.v1 import results_pb2

__all__ = ["LocalReads", "local_plan"]

log = structlog.get_logger("workmesh.results")

TICKET_TTL_S = 30.0
MAX_HELD_FILES = 4096  # descriptors held for tickets not taken yet; beyond: answered over gRPC
_BATCH = 200  # descriptors per message (the kernel's limit is 253)
_MAX_PATH = 100  # sun_path holds 108 bytes


class LocalReads:
    """The Unix socket that hands a local reader its files, and the tickets not taken yet.

    Args:
        path: the socket's path (replaced when a stale one is there).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._tickets: dict[bytes, tuple[float, list[int]]] = {}
        self._held = 0
        self._sock: socket.socket | None = None
        self._task: asyncio.Task | None = None
        self._conns: set[asyncio.Task] = set()
        self._failed = False
        self.answered = 0  # reads answered with files (counted when the ticket is given)

    @classmethod
    def beside(cls, store: ParquetStore) -> LocalReads | None:
        """Local reads on a socket of this instance in the data directory; None when its path is too long.

        The name is ``_local-<random>.sock`` (job ids never start with "_"), one per instance, and
        each answer names its socket: two services sharing a data directory each keep their own.
        """
        path = store.root.resolve() / f"_local-{secrets.token_hex(4)}.sock"
        if len(os.fsencode(path)) > _MAX_PATH:
            log.info("results service: no local reads, the socket path is too long", path=str(path))
            return None
        return cls(path)

    async def answer(self, store: TombstonedStore, queries: Sequence[ReadQuery], unit: int) -> bytes | None:
        """The ReadSeriesResponse (bytes) of a local read of `queries`; None: answer it over gRPC.

        Raises:
            NotFound: a deleted job, or one without series.
        """
        inner = store.store
        if self._failed or not isinstance(inner, ParquetStore):
            return None
        for query in queries:
            if await store.tombstones.contains(query.job_id):
                raise deleted_error(query.job_id)
        with collector_paused():  # the catalogues' many small objects: a quarter of the plan's CPU collecting
            planned = await asyncio.to_thread(local_plan, inner, queries, unit)
        if planned is None:
            return None
        read, fds = planned
        if not self.room(len(fds)):
            _close_all(fds)
            return None
        try:
            await self._started()
        except OSError as exc:
            _close_all(fds)
            log.warning("results service: local reads off, no socket", path=str(self.path), error=str(exc))
            self._failed = True
            return None
        read.socket = str(self.path)
        read.ticket = self.offer(fds)
        self.answered += 1
        return results_pb2.ReadSeriesResponse(local=read).SerializeToString()

    async def _started(self) -> None:
        if self._failed:
            raise OSError("the socket could not be made before")
        if self._sock is None:
            await self.start()

    async def start(self) -> None:
        """Listen on the socket (done by the first local read when not called before).

        It is bound under a temporary name and renamed once it listens, so that a socket of this
        form that refuses a connection is one whose service is gone: those are removed first.
        """
        await asyncio.to_thread(_remove_dead_sockets, self.path.parent)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        staging = self.path.with_name(f".{self.path.name}.new")
        try:
            with contextlib.suppress(FileNotFoundError):
                staging.unlink()
            sock.bind(str(staging))
            os.chmod(staging, 0o666)  # the ticket is the access check, as a TCP port is open to every local user
            sock.listen(64)
            os.replace(staging, self.path)
        except BaseException:
            sock.close()
            with contextlib.suppress(FileNotFoundError):
                staging.unlink()
            raise
        sock.setblocking(False)
        self._sock = sock
        self._task = asyncio.create_task(self._accept())

    async def close(self) -> None:
        for task in [self._task, *self._conns]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        self._task = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        for _, fds in self._tickets.values():
            _close_all(fds)
        self._tickets.clear()
        self._held = 0

    def room(self, files: int) -> bool:
        """Whether `files` more descriptors may be held (after dropping expired tickets)."""
        now = time.monotonic()
        for ticket in [t for t, (deadline, _) in self._tickets.items() if deadline < now]:
            self._drop(ticket)
        return self._held + files <= MAX_HELD_FILES

    def offer(self, fds: list[int]) -> bytes:
        """A new ticket for `fds` (owned from now on: closed once sent or expired)."""
        ticket = secrets.token_bytes(32)
        self._tickets[ticket] = (time.monotonic() + TICKET_TTL_S, fds)
        self._held += len(fds)
        return ticket

    def _drop(self, ticket: bytes) -> list[int] | None:
        found = self._tickets.pop(ticket, None)
        if found is None:
            return None
        self._held -= len(found[1])
        if found[0] < time.monotonic():
            _close_all(found[1])
            return None
        return found[1]

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._sock is not None
        while True:
            conn, _ = await loop.sock_accept(self._sock)
            task = asyncio.create_task(self._serve(conn))
            self._conns.add(task)
            task.add_done_callback(self._conns.discard)

    async def _serve(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        fds: list[int] | None = None
        with conn:
            try:
                ticket = b""
                async with asyncio.timeout(10):
                    while len(ticket) < 32:
                        more = await loop.sock_recv(conn, 32 - len(ticket))
                        if not more:
                            return
                        ticket += more
                fds = self._drop(ticket)
                if fds is None:
                    await loop.sock_sendall(conn, b"WMLX")  # unknown, used or expired
                    return
                conn.setblocking(True)  # a few small messages: sendmsg with descriptors, no partial writes
                conn.settimeout(10)
                for lo in range(0, len(fds), _BATCH):
                    batch = fds[lo : lo + _BATCH]
                    header = b"WMLR" + struct.pack("<I", len(batch))
                    await asyncio.to_thread(
                        conn.sendmsg, [header], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", batch))]
                    )
            except (OSError, TimeoutError) as exc:
                log.info("local read: the reader left before taking its files", error=str(exc))
            finally:
                if fds is not None:
                    _close_all(fds)


def _remove_dead_sockets(directory: Path) -> None:
    """Remove the local-read sockets in `directory` that nobody listens on (their service is gone)."""
    for path in [*directory.glob("_local-*.sock"), directory / "_local.sock"]:  # and the name of old versions
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)  # a full backlog: alive
            try:
                probe.connect(str(path))
            except ConnectionRefusedError:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                log.info("local reads: removed the socket of a service that is gone", path=str(path))
            except OSError:
                pass  # not there (any more), or not a socket: left alone


def _close_all(fds: Sequence[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def local_plan(
    store: ParquetStore, queries: Sequence[ReadQuery], unit: int
) -> tuple[results_pb2.LocalRead, list[int]] | None:
    """The LocalRead of `queries` (without socket and ticket) and the open files; None: read over gRPC.

    Runs in a thread: it loads the catalogues and opens the part files. Raises NotFound for a
    job without series.
    """
    for attempt in range(3):
        try:
            return _plan_once(store, queries, unit)
        except FileNotFoundError:  # a compaction replaced parts after the catalogue was loaded
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _plan_once(
    store: ParquetStore, queries: Sequence[ReadQuery], unit: int
) -> tuple[results_pb2.LocalRead, list[int]] | None:
    if any(q.window for q in queries):
        return None
    scale = ns_per(unit)
    plans = [store._plan(q) for q in queries]
    files: dict[tuple[int, int], int] = {}  # (plan, part) -> file index
    cache: dict = {}
    out = results_pb2.LocalRead()
    for key in sorted({k for plan in plans for k in plan.by_key}):
        axis = None
        for p, plan in enumerate(plans):
            sid = plan.by_key.get(key)
            if sid is None:
                continue
            entry = plan.catalog["series"][sid]
            names = [n for n in entry["fields"] if not plan.query.fields or n in plan.query.fields]
            if not names:
                continue
            pieces = _pieces(plan, sid, cache)
            if pieces is None:
                return None
            if not pieces:
                continue
            start, step = pieces[0][2], pieces[0][3]
            count = sum(piece[1][1] for piece in pieces)
            if count == 1:
                step = scale  # one value: any step
            if step % scale or (axis is not None and axis != (start, step, count)):
                return None  # timestamps the service must convert or align
            axis = (start, step, count)
            series = out.series.add(time_start=start // scale, time_step=step // scale, count=count)
            series.key.job_id = plan.query.job_id
            series.key.measurement = key[0]
            series.key.tags.update(dict(key[1]))
            series.fields.extend(names)
            series.units.extend(entry["fields"][n] or "" for n in names)
            for index, (row, n), _s, _d in pieces:
                file = files.setdefault((p, index), len(files))
                series.pieces.add(file=file, row=row, count=n)
    fds: list[int] = []
    try:
        for p, index in files:  # in file-index order (insertion order)
            plan = plans[p]
            fds.append(os.open(plan.job_dir / plan.catalog["parts"][index]["file"], os.O_RDONLY | os.O_CLOEXEC))
    except BaseException:
        _close_all(fds)
        raise
    out.files = len(fds)
    return out, fds


def _rows(plan, index: int, cache: dict) -> dict[int, tuple[int, int, int, int]]:
    """Series id -> (first row, count, start, step) in part `index` of `plan` (rows follow the counts)."""
    found = cache.get((id(plan), index))
    if found is None:
        found, row = {}, 0
        for sid, count, start, _end, step in plan.catalog["parts"][index]["series"]:
            found[sid] = (row, count, start, step)
            row += count
        cache[(id(plan), index)] = found
    return found


def _pieces(plan, sid: int, cache: dict) -> list[tuple[int, tuple[int, int], int, int]] | None:
    """(part, (row, count), start, step) of series `sid` in time order, sliced; None: not regular.

    A piece of one value has step 0 (its step is not known); a series of one value gets step 1 ns.
    """
    out: list[tuple[int, tuple[int, int], int, int]] = []
    query = plan.query
    for index in plan.parts_of.get(sid, []):
        found = _rows(plan, index, cache).get(sid)
        if found is None:
            continue
        row, count, start, step = found
        if step <= 0 and count > 1:
            return None
        if count == 1:
            step = 0
            keep = (query.start is None or start >= query.start) and (query.end is None or start < query.end)
            lo, hi = 0, int(keep)
        else:
            lo, hi = 0, count
            if query.start is not None:
                lo = max(0, -(-(query.start - start) // step))
            if query.end is not None:
                hi = min(count, -(-(query.end - start) // step))
        if hi <= lo:
            continue
        if out:
            _, (_, n), s, d = out[-1]
            if d == 0 or step == 0 or d != step or s + n * d != start + lo * step:
                return None  # pieces that do not continue one regular axis
        out.append((index, (row + lo, hi - lo), start + lo * step, step))
    if len(out) == 1 and out[0][1][1] == 1:
        index, rows, s, _ = out[0]
        out = [(index, rows, s, 1)]
    return out
