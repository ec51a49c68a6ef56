"""Local reads (ReadSeriesRequest.local): a client on the service's host takes the Parquet files over
the service's Unix socket and decodes them itself. The series are those of a gRPC read (several jobs,
fields, time ranges, units, seconds); reads the service must align, convert or downsample go over gRPC;
a deleted job is NOT_FOUND; a ticket works once; a client whose socket is gone reads over gRPC; two
services sharing a data directory keep their own sockets."""

from __future__ import annotations

import asyncio
import os
import socket

import numpy as np
import pytest

from tests.results.support import new_job, serving
from tests.support import run
from workmesh.services.clients import ResultsClient
from workmesh.services.clients._local import LocalUnavailable, take_files
from workmesh.services.core.errors import NotFound
from workmesh.services.results import ParquetStore
from workmesh.v1 import results_pb2

T0 = 1_900_000_000  # s


async def _write(client: ResultsClient, job: str, scale: float, steps: int = 100) -> None:
    writer = client.writer(job, time_unit="s")
    for k in range(4):
        await writer.series("heat", asset=f"a{k}", units={"Q": "kW"}).write(
            T0 + np.arange(steps) * 3600, Q=np.arange(steps, dtype=float) * k * scale, T=np.full(steps, np.nan)
        )
    await writer.series("single", asset="z").write(np.array([T0]), Q=np.array([scale]))
    await writer.close()


def _same(local: list, remote: list) -> None:
    assert [s.key for s in local] == [s.key for s in remote] and local
    for a, b in zip(local, remote, strict=True):
        np.testing.assert_array_equal(a.timestamps, b.timestamps)
        assert a.fields.keys() == b.fields.keys() and a.units == b.units
        for name in a.fields:
            np.testing.assert_array_equal(a.fields[name], b.fields[name])
            assert not a.fields[name].flags.writeable


def test_local_reads_give_the_series_of_a_grpc_read(tmp_path):
    async def body():
        async with serving(ParquetStore(tmp_path / "series"), compaction_delay=-1) as client:
            assert client.local_reads  # 127.0.0.1: on this host
            remote = ResultsClient(f"127.0.0.1:{client.port}", local_reads=False)
            jobs = [new_job(), new_job(), new_job()]
            for i, job in enumerate(jobs):
                await _write(client, job, 1.0 + i)
            cases = [
                (jobs, {}),
                (jobs[:1], {"fields": ["Q"]}),
                (jobs[::-1], {"start": T0 + 10 * 3600, "end": T0 + 50 * 3600 + 1, "time_unit": "s"}),
                (jobs[1:], {"tags": {"asset": "a2"}, "time_unit": "ms"}),
                (jobs, {"start": T0 + 1, "time_unit": "s"}),  # the single values left out
            ]
            try:
                for n, (ids, kwargs) in enumerate(cases, start=1):
                    _same(await client.read(ids, **kwargs), await remote.read(ids, **kwargs))
                    assert client.server_local.answered == n, kwargs
            finally:
                await remote.close()
            found = await client.read(jobs[0])
            assert {s.key.measurement for s in found} == {"heat", "single"}
            assert all("T" not in s.fields for s in found)  # a field of only NaN: left out, as over gRPC

    run(body())


def test_reads_the_service_must_align_convert_or_downsample_go_over_grpc(tmp_path):
    async def body():
        async with serving(ParquetStore(tmp_path / "series"), compaction_delay=-1) as client:
            remote = ResultsClient(f"127.0.0.1:{client.port}", local_reads=False)
            full, short, irregular = new_job(), new_job(), new_job()
            await _write(client, full, 1.0)
            await _write(client, short, 2.0, steps=50)  # other times: aligned by the service
            writer = client.writer(irregular, time_unit="s")
            await writer.series("heat", asset="a0").write(np.array([T0, T0 + 1, T0 + 5]), Q=np.arange(3.0))
            await writer.close()
            cases = [
                ([full, short], {}),
                ([irregular], {}),
                ([full], {"window": 7200, "aggregate": "mean", "time_unit": "s"}),
            ]
            try:
                for ids, kwargs in cases:
                    _same(await client.read(ids, **kwargs), await remote.read(ids, **kwargs))
            finally:
                await remote.close()
            assert client.server_local.answered == 0
            assert client.local_reads  # still asked for: those were the service's choice

    run(body())


def test_a_deleted_job_is_not_found_and_a_ticket_works_once(tmp_path):
    async def body():
        async with serving(ParquetStore(tmp_path / "series"), compaction_delay=-1) as client:
            kept, gone = new_job(), new_job()
            await _write(client, kept, 1.0)
            await _write(client, gone, 1.0)
            await client.delete(gone)
            with pytest.raises(NotFound, match=gone):
                await client.read([kept, gone])
            request = results_pb2.ReadSeriesRequest(job_ids=[kept], local=True)
            async for response in client.stub.ReadSeries(request):
                local = response.local
            assert local.files > 0 and local.socket == str(client.server_local.path)
            fds = await asyncio.to_thread(take_files, local.socket, local.ticket, local.files, 10)
            try:
                assert len(fds) == local.files and all(os.fstat(fd).st_size > 0 for fd in fds)
            finally:
                for fd in fds:
                    os.close(fd)
            for ticket in (local.ticket, os.urandom(32)):  # used; made up
                with pytest.raises(LocalUnavailable, match="refused"):
                    await asyncio.to_thread(take_files, local.socket, ticket, local.files, 10)

    run(body())


def test_a_client_whose_socket_is_gone_reads_over_grpc(tmp_path):
    async def body():
        async with serving(ParquetStore(tmp_path / "series"), compaction_delay=-1) as client:
            job = new_job()
            await _write(client, job, 1.0)
            first = await client.read(job)
            assert client.server_local.answered == 1
            client.server_local.path.unlink()  # as if the service were on another host
            again = await client.read(job)
            _same(first, again)
            assert client.server_local.answered == 2  # answered with files the client could not take
            assert not client.local_reads  # from now on over gRPC
            await client.read(job)
            assert client.server_local.answered == 2

    run(body())


def test_two_services_sharing_a_data_directory_keep_their_own_sockets(tmp_path):
    async def body():
        root = tmp_path / "series"
        async with serving(ParquetStore(root), compaction_delay=-1) as first:
            job = new_job()
            await _write(first, job, 1.0)
            dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # a service that died without cleaning up
            dead.bind(str(root / "_local-0badf00d.sock"))
            dead.close()
            expected = await first.read(job)  # the first one's socket: listening
            async with serving(ParquetStore(root), compaction_delay=-1) as second:
                _same(await second.read(job), expected)
                assert first.server_local.path != second.server_local.path
                assert first.server_local.path.exists() and second.server_local.path.exists()
                assert not (root / "_local-0badf00d.sock").exists()  # removed: nobody listened on it
                _same(await first.read(job), expected)  # its files, not refused by the other's socket
                assert first.local_reads and second.local_reads
                assert (first.server_local.answered, second.server_local.answered) == (2, 1)
            assert first.server_local.path.exists()  # the second's close leaves the first's socket
            _same(await first.read(job), expected)
            assert first.local_reads and first.server_local.answered == 3
        assert sorted(p.name for p in root.glob("*.sock")) == []

    run(body())
