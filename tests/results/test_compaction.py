"""Small Parquet parts are merged once a job's writes are done: atomically, and not on a full disk."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from tests.results.support import HOUR, new_job, serving
from tests.support import eventually_async, run
from workmesh.services.clients import ReadQuery
from workmesh.services.results import ParquetStore
from workmesh.services.results.stores._compaction import Compactor, compact_job
from workmesh.services.results.stores._parquet import _load


async def until(predicate, timeout: float = 30.0):
    async def check():
        return predicate()

    return await eventually_async(check, timeout)


def parts(store: ParquetStore, job: str) -> int:
    catalog = _load(store.root / job)
    return len(catalog["parts"]) if catalog else 0


async def write_in_batches(client, job: str, batches: int, components: int = 5, steps: int = 20) -> None:
    """`batches` flushes, each a slice of time for every component (one part per flush)."""
    writer = client.writer(job)
    for b in range(batches):
        ts = (np.arange(steps) + b * steps) * HOUR
        for c in range(components):
            await writer.series("heat", asset=f"c{c}").write(ts, Q=ts / HOUR + c, T=-(ts / HOUR) - c)
        await writer.flush()
    await writer.close()


async def written(root, batches: int, **shape) -> tuple[ParquetStore, str]:
    """A job written in `batches` flushes with compaction off; the store and the job id."""
    store = ParquetStore(root)
    job = new_job()
    async with serving(store, compaction_delay=-1) as client:
        await write_in_batches(client, job, batches, **shape)
    return ParquetStore(root), job


def expected(components: int, total: int) -> dict:
    ts = np.arange(total) * HOUR
    return {f"c{c}": (ts, ts / HOUR + c, -(ts / HOUR) - c) for c in range(components)}


def check(series, components: int, total: int) -> None:
    want = expected(components, total)
    assert len(series) == components
    for s in series:
        tags = s.tags if hasattr(s, "tags") else s.key.tag_dict  # client Series or store SeriesData
        ts, q, t = want[tags["asset"]]
        np.testing.assert_array_equal(s.timestamps, ts)
        np.testing.assert_array_equal(s.fields["Q"], q)
        np.testing.assert_array_equal(s.fields["T"], t)


def test_small_parts_are_compacted_after_the_writes_and_read_the_same(tmp_path):
    async def scenario():
        store = ParquetStore(tmp_path / "series")
        job = new_job()
        async with serving(store, compaction_delay=0.05) as client:
            await write_in_batches(client, job, 60)
            listed = await client.list_series(job)
            await until(lambda: parts(store, job) == 1, timeout=30)
            check(await client.read(job), 5, 60 * 20)
            assert await client.list_series(job) == listed
            # the old part files go right after the new catalogue is in place
            await until(lambda: len(list((store.root / job).rglob("*.parquet"))) == 1)

    run(scenario())


def test_a_reader_sees_old_parts_or_the_new_one_never_neither(tmp_path):
    async def scenario():
        store, job = await written(tmp_path / "series", 80)
        assert parts(store, job) == 80
        failures: list[BaseException] = []
        counts: list[int] = []
        stop = threading.Event()

        def reader() -> None:
            while not stop.is_set():
                try:
                    found = store._read(ReadQuery(job, fields=("Q",)))
                    counts.append(sum(len(s.timestamps) for s in found))
                except BaseException as exc:  # noqa: BLE001 - recorded, asserted below
                    failures.append(exc)

        threads = [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            await until(lambda: len(counts) >= 2, timeout=30)
            result = await asyncio.to_thread(compact_job, store, job)
            await until(lambda: len(counts) >= 10, timeout=30)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert (result.parts_before, result.parts_after) == (80, 1)
        assert failures == []
        assert set(counts) == {5 * 80 * 20}

    run(scenario())


def test_compaction_on_a_full_disk_keeps_the_old_parts_and_retries(small_disk):
    async def scenario():
        disk = small_disk(4 << 20)
        store, job = await written(disk / "series", 40, components=20, steps=50)
        before = parts(store, job)
        filler = disk / "filler"
        with open(filler, "wb") as f:  # fill what is left of the disk
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        compactor = Compactor(store, delay=0.01, retry=0.05, max_retry=0.1)
        compactor.begin(job)
        compactor.end(job)
        await until(lambda: compactor.postponed >= 3)  # attempts, all on a full disk
        assert parts(store, job) == before
        assert compactor.results == []
        check(store._read(ReadQuery(job)), 20, 40 * 50)
        assert [p.name for p in (store.root / job).rglob(".tmp-*")] == []
        filler.unlink()
        await until(lambda: parts(store, job) == 1, timeout=30)
        await compactor.wait_idle()
        check(store._read(ReadQuery(job)), 20, 40 * 50)

    run(scenario())


def test_a_job_deleted_meanwhile_is_not_brought_back(tmp_path):
    async def scenario():
        store = ParquetStore(tmp_path / "series")
        job = new_job()
        async with serving(store, compaction_delay=-1) as client:
            await write_in_batches(client, job, 10)
            await client.delete(job)
        assert compact_job(store, job) is None
        assert not (store.root / job).exists()

    run(scenario())


def test_a_streamed_read_running_during_compaction_reads_the_old_parts(tmp_path):
    async def main():
        store, job = await written(tmp_path / "series", batches=8, components=6)
        old = {p["file"] for p in _load(store.root / job)["parts"]}
        # blocks of about one group each, so that the read is under way while compaction runs
        stream = store.read_groups([ReadQuery(job)], block_values=1)
        got = [await anext(stream)]
        result = await asyncio.to_thread(compact_job, store, job)
        assert result.parts_after < result.parts_before
        assert all((store.root / job / name).exists() for name in old)  # kept for the running read
        got += [block async for block in stream]
        check([s for block in got for s in block], 6, 8 * 20)
        assert not any((store.root / job / name).exists() for name in old)  # removed when it ended
        blocks = [block async for block in store.read_groups([ReadQuery(job)])]
        check([s for block in blocks for s in block], 6, 8 * 20)

    run(main())


def test_a_comparison_read_streams_whole_groups_in_job_order(tmp_path):
    async def main():
        store = ParquetStore(tmp_path / "series")
        jobs = [new_job() for _ in range(3)]
        async with serving(store, compaction_delay=-1) as client:
            for job in jobs:
                await write_in_batches(client, job, batches=3, components=4)
            blocks = [
                block
                async for block in store.read_groups([ReadQuery(j, fields=("Q",)) for j in jobs], block_values=100)
            ]
            assert len(blocks) > 1  # streamed, not read at once
            for block in blocks:
                assert len(block) % 3 == 0  # whole groups: one series of every job per key
                for i in range(0, len(block), 3):
                    assert [s.key.job_id for s in block[i : i + 3]] == jobs
                    assert len({s.key.tags for s in block[i : i + 3]}) == 1
            read = await client.read(jobs, fields=["Q"])
            assert [s.job_id for s in read] == jobs * 4

    run(main())


def test_a_streamed_read_stopped_early_lets_compaction_remove_the_old_parts(tmp_path):
    # the next block is read ahead while the caller holds this one: stopping after the first
    # must wait for that read, then release the job, so the replaced parts do not linger
    async def main():
        store, job = await written(tmp_path / "series", batches=8, components=6)
        old = {p["file"] for p in _load(store.root / job)["parts"]}
        stream = store.read_groups([ReadQuery(job)], block_values=1)
        first = await anext(stream)
        assert len(first) == 1
        await stream.aclose()
        assert not store._readers
        result = await asyncio.to_thread(compact_job, store, job)
        assert result.parts_after < result.parts_before
        assert not any((store.root / job / name).exists() for name in old)
        blocks = [block async for block in store.read_groups([ReadQuery(job)])]
        check([s for block in blocks for s in block], 6, 8 * 20)

    run(main())
