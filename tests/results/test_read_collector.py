"""A read of many series runs no garbage collection (local and over gRPC) but, at most, the one young
collection after it: its objects are not garbage, so collecting while it builds them only rescans
the heap (full collections of 0.2-1.1 s in comparison reads). The collector is back on after the
read, and after a failed one."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from tests.results.support import new_job, serving
from tests.support import run
from workmesh.services.clients import ResultsClient
from workmesh.services.core.errors import NotFound
from workmesh.services.results import ParquetStore

T0 = 1_900_000_000  # s
SERIES = 1500  # a few objects each: several thousand allocations, many young collections without the pause


@pytest.mark.parametrize("local", [True, False], ids=["local", "grpc"])
def test_a_read_of_many_series_collects_nothing(tmp_path, local):
    collections: list[int] = []

    def counted(phase: str, info: dict) -> None:
        if phase == "start":
            collections.append(info["generation"])

    async def body():
        async with serving(ParquetStore(tmp_path / "series"), compaction_delay=-1) as client:
            jobs = [new_job(), new_job()]
            for job in jobs:
                writer = client.writer(job, time_unit="s")
                for k in range(SERIES):
                    await writer.series("heat", asset=f"a{k:05d}").write(T0 + np.arange(4) * 3600, Q=np.arange(4.0) + k)
                await writer.close()
            reader = ResultsClient(f"127.0.0.1:{client.port}", local_reads=local)
            try:
                gc.callbacks.append(counted)
                try:
                    found = await reader.read(jobs, fields=["Q"])
                finally:
                    gc.callbacks.remove(counted)
                assert reader.local_reads == local
                assert len(found) == 2 * SERIES and found[-1].fields["Q"][3] == SERIES + 2.0
                # at most the one young collection the first allocation after the read starts
                assert collections in ([], [0]), collections
                assert gc.isenabled()
                with pytest.raises(NotFound):
                    await reader.read([jobs[0], new_job()])
                assert gc.isenabled()
            finally:
                await reader.close()

    run(body())
