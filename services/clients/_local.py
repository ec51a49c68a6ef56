"""The caller's side of a local read: take the part files from the service's socket, decode them here.

See :mod:`workmesh.services.results._local` for why and when the service answers a
``ReadSeriesRequest.local`` with a ``LocalRead``. Here the files' descriptors are taken from the
service's Unix socket with the ticket, each file is memory-mapped and the wanted field columns are
decoded by pyarrow in threads (it releases the GIL, so two cores decode two files at once), and
every series is a read-only view of its file's column (one copy of the values in all: the decode).
Anything that goes wrong before the files are here raises :class:`LocalUnavailable`, and the
caller reads over gRPC instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import mmap
import os
import socket
import struct
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from workmesh.v1 import results_pb2

__all__ = ["LocalUnavailable", "read_local", "take_files"]

_THREADS = max(1, min(4, os.cpu_count() or 1))


class LocalUnavailable(Exception):
    """The service's files cannot be had here (another host, a socket gone, a ticket refused)."""


def take_files(path: str, ticket: bytes, count: int, timeout: float | None) -> list[int]:
    """The `count` descriptors the service's socket at `path` hands over for `ticket` (blocking)."""
    fds: list[int] = []
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(ticket)
            while len(fds) < count:
                data, more, _flags, _addr = socket.recv_fds(sock, 8, min(count - len(fds), 253))
                fds += more
                if data[:4] != b"WMLR" or len(data) < 8 or len(more) != struct.unpack("<I", data[4:8])[0]:
                    raise LocalUnavailable(f"the service's socket {path} refused the ticket or broke off")
    except OSError as exc:
        _close(fds)
        raise LocalUnavailable(f"cannot take the files from {path}: {exc}") from exc
    except BaseException:
        _close(fds)
        raise
    return fds


def _close(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


Row = tuple[str, str, dict[str, str], np.ndarray, dict[str, np.ndarray], dict[str, str]]


async def read_local(local: results_pb2.LocalRead, timeout: float | None) -> list[Row]:
    """The series of `local` as (job_id, measurement, tags, timestamps, fields, units).

    Raises:
        LocalUnavailable: the files cannot be taken from the service's socket.
    """
    fds = await asyncio.to_thread(take_files, local.socket, local.ticket, local.files, timeout)
    try:
        needed: list[set[str]] = [set() for _ in fds]
        for series in local.series:
            names = series.fields
            for piece in series.pieces:
                needed[piece.file].update(names)
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(_THREADS, thread_name_prefix="workmesh-local-read") as pool:
            pairs = zip(fds, needed, strict=True)
            loads = [loop.run_in_executor(pool, _columns, fd, sorted(names)) for fd, names in pairs]
            columns = await asyncio.gather(*loads)
    finally:
        _close(fds)
    return _assemble(local, columns)


def _columns(fd: int, names: list[str]) -> dict[str, np.ndarray]:
    """The float64 columns `names` of the Parquet file open as `fd` (those it has)."""
    import pyarrow as pa
    from pyarrow._parquet import ParquetReader  # what pq.ParquetFile wraps, with a memory pool to choose

    if not names:
        return {}
    mapped = mmap.mmap(fd, 0, prot=mmap.PROT_READ)  # its own copy of the descriptor
    # The columns in glibc's memory, not in pyarrow's default mimalloc: mimalloc asks for
    # transparent huge pages, and the kernel compacts memory to make them ("defrag=madvise"), so
    # a read into fresh memory (the caller still holding the last one) cost 2.9-3.3 CPU-s instead
    # of 0.8 for a 10-job comparison, 2.6-3.0 of it in the kernel (measured; 0.4-0.5 either way
    # once the memory is reused).
    reader = ParquetReader(memory_pool=pa.system_memory_pool())
    reader.open(pa.BufferReader(pa.py_buffer(mapped)))
    present = [n for n in names if n in reader.schema_arrow.names]
    table = reader.read_all(column_indices=[reader.column_name_idx(n) for n in present], use_threads=False)
    out = {}
    for name in present:
        column = table.column(name)
        values = column.chunk(0).to_numpy(zero_copy_only=False) if column.num_chunks == 1 else column.to_numpy()
        values.flags.writeable = False  # the series are slices of it: read-only views, as documented
        out[name] = values
    return out


def _assemble(local: results_pb2.LocalRead, columns: list[dict[str, np.ndarray]]) -> list[Row]:
    axes: dict[tuple[int, int, int], np.ndarray] = {}
    out: list[Row] = []
    for series in local.series:
        count = series.count
        fields: dict[str, np.ndarray] = {}
        units: dict[str, str] = {}
        pieces = series.pieces
        for i, name in enumerate(series.fields):
            parts = [_values(columns[p.file].get(name), p.row, p.count) for p in pieces]
            values = parts[0] if len(parts) == 1 else np.concatenate(parts)
            # a field with no value in the range is left out, as a ReadSeries answer does
            if not len(values) or (np.isnan(values[0]) and np.isnan(values).all()):
                continue
            fields[name] = values
            if i < len(series.units) and series.units[i]:
                units[name] = series.units[i]
        if not fields:
            continue
        axis = (series.time_start, series.time_step, count)
        ts = axes.get(axis)
        if ts is None:
            ts = axes[axis] = series.time_start + np.arange(count, dtype=np.int64) * series.time_step
            ts.flags.writeable = False
        key = series.key
        out.append((key.job_id, key.measurement, dict(key.tags), ts, fields, units))
    return out


def _values(column: np.ndarray | None, row: int, count: int) -> np.ndarray:
    if column is None:
        return np.full(count, np.nan)
    return column[row : row + count]  # a view of a read-only column: read-only
