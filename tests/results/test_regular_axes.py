"""Regular times on the read path: a Parquet read makes each regular time axis once and the
series of every job read share it (read-only, with its step), so the service sends them as start
and step without checking; irregular or split series carry their own times and no step."""

from __future__ import annotations

import numpy as np
import pytest

from tests.results.support import HOUR, new_job
from tests.support import run
from workmesh.services.clients import Chunk, ReadQuery, SeriesKey
from workmesh.services.results import ParquetStore


def test_series_of_several_jobs_share_one_regular_axis(tmp_path):
    async def scenario():
        store = ParquetStore(tmp_path)
        jobs = [new_job(), new_job()]
        ts = 1000 * HOUR + np.arange(24, dtype=np.int64) * HOUR
        for j, job in enumerate(jobs):
            await store.write(
                [Chunk(SeriesKey(job, "m", (("c", str(c)),)), ts, {"f": ts * 0.0 + c + j}) for c in range(3)]
            )
        blocks = [b async for b in store.read_groups([ReadQuery(job, fields=("f",)) for job in jobs])]
        read = [s for b in blocks for s in b]
        assert len(read) == 6
        axis = read[0].timestamps
        np.testing.assert_array_equal(axis, ts)
        assert all(s.timestamps is axis and s.step == HOUR for s in read)
        assert not axis.flags.writeable
        with pytest.raises(ValueError):
            axis[0] = 0
        for s in read:
            c, j = int(s.key.tags[0][1]), jobs.index(s.key.job_id)
            np.testing.assert_array_equal(s.fields["f"], np.full(24, c + j, dtype=float))

    run(scenario())


def test_irregular_and_split_series_carry_no_step(tmp_path):
    async def scenario():
        store = ParquetStore(tmp_path)
        job = new_job()
        irregular = np.array([0, 1, 3, 7], dtype=np.int64) * HOUR
        regular = np.arange(8, dtype=np.int64) * HOUR
        await store.write(
            [
                Chunk(SeriesKey(job, "m", (("c", "a"),)), irregular, {"f": np.ones(4)}),
                Chunk(SeriesKey(job, "m", (("c", "b"),)), regular[:4], {"f": np.ones(4)}),
            ]
        )
        await store.write([Chunk(SeriesKey(job, "m", (("c", "b"),)), regular[4:], {"f": np.ones(4)})])
        read = {s.key.tags[0][1]: s for b in [b async for b in store.read_groups([ReadQuery(job)])] for s in b}
        np.testing.assert_array_equal(read["a"].timestamps, irregular)
        np.testing.assert_array_equal(read["b"].timestamps, regular)
        assert read["a"].step == 0 and read["b"].step == 0  # two parts: joined, not known regular

    run(scenario())
