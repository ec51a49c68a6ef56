"""Parquet parts are read memory-mapped: what a read returned stays intact after its files go."""

from __future__ import annotations

from tests.results.test_compaction import check, written
from tests.support import run
from workmesh.services.clients import ReadQuery
from workmesh.services.results.stores._compaction import compact_job


def test_series_read_stay_intact_after_their_part_files_are_removed(tmp_path):
    async def main():
        store, job = await written(tmp_path / "series", batches=4, components=3)
        before = await store.read([ReadQuery(job)])
        check(before, 3, 4 * 20)
        result = compact_job(store, job)  # unlinks the parts the arrays above came from
        assert result is not None and result.parts_after < result.parts_before
        assert len(list((store.root / job).rglob("part-*.parquet"))) == result.parts_after
        check(before, 3, 4 * 20)  # the mapped pages outlive the file names
        check(await store.read([ReadQuery(job)]), 3, 4 * 20)  # and the merged part reads the same
        await store.delete(job)
        check(before, 3, 4 * 20)

    run(main())
