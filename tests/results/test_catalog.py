"""A Parquet job's catalogue: commits append to a log, torn lines are ignored, snapshots fold it."""

from __future__ import annotations

import json

import numpy as np

from tests.results.support import HOUR, new_job
from tests.support import run
from workmesh.services.clients import Chunk, ReadQuery, SeriesKey
from workmesh.services.results import ParquetStore
from workmesh.services.results.stores._catalog import CATALOG, load_catalog


def chunk(job: str, asset: str, first: int, n: int = 3, unit: str = "") -> Chunk:
    ts = (np.arange(n) + first) * HOUR
    return Chunk(SeriesKey(job, "heat", (("asset", asset),)), ts, {"Q": ts / HOUR}, {"Q": unit} if unit else {})


def log_of(store: ParquetStore, job: str):
    snapshot = json.loads((store.root / job / CATALOG).read_text())
    return snapshot, store.root / job / snapshot["log"]


def test_a_commit_appends_one_line_and_leaves_the_snapshot(tmp_path):
    async def main():
        store, job = ParquetStore(tmp_path), new_job()
        await store.write([chunk(job, "a", 0)])
        snapshot, log = log_of(store, job)
        await store.write([chunk(job, "a", 3, unit="kW"), chunk(job, "b", 0)])
        await store.write([chunk(job, "b", 3)])
        assert log_of(store, job)[0] == snapshot  # not rewritten
        lines = log.read_bytes().splitlines()
        assert len(lines) == 2
        catalog = load_catalog(store.root / job)
        assert len(catalog["parts"]) == 3 and catalog["series"][0]["fields"] == {"Q": "kW"}
        # another store (a restarted service) reads the same catalogue and goes on writing
        other = ParquetStore(tmp_path)
        await other.write([chunk(job, "a", 6)])
        (a, b) = await other.read([ReadQuery(job)])
        np.testing.assert_array_equal(a.timestamps, np.arange(9) * HOUR)
        assert a.units == {"Q": "kW"} and len(b.timestamps) == 6

    run(main())


def test_a_torn_last_line_is_ignored_and_cut_off_by_the_next_commit(tmp_path):
    async def main():
        store, job = ParquetStore(tmp_path), new_job()
        await store.write([chunk(job, "a", 0)])
        await store.write([chunk(job, "a", 3)])
        _, log = log_of(store, job)
        with open(log, "ab") as f:  # a crash in the middle of an append
            f.write(b'{"series":[{"measurement":"heat","ta')
        restarted = ParquetStore(tmp_path)
        assert len(load_catalog(store.root / job)["parts"]) == 2
        await restarted.write([chunk(job, "a", 6)])
        assert log.read_bytes().count(b"\n") == 2 and log.read_bytes().endswith(b"\n")
        (a,) = await restarted.read([ReadQuery(job)])
        np.testing.assert_array_equal(a.timestamps, np.arange(9) * HOUR)

    run(main())


def test_the_log_is_folded_into_a_snapshot_as_it_grows(tmp_path):
    async def main():
        store, job = ParquetStore(tmp_path, fsync=False), new_job()
        logs = set()
        for i in range(400):
            await store.write([chunk(job, f"c{i % 40}", (i // 40) * 3)])
            logs.add(log_of(store, job)[0]["log"])
        snapshot, log = log_of(store, job)
        assert len(logs) > 1 and log.stat().st_size <= max((store.root / job / CATALOG).stat().st_size, 1 << 16) + 4096
        assert sorted(p.name for p in (store.root / job).glob("_catalog.*.log")) == [log.name]  # old logs gone
        found = await store.read([ReadQuery(job)])
        assert len(found) == 40 and all(len(s.timestamps) == 30 for s in found)

    run(main())
