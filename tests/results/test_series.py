"""The results service over each store (Parquet, real InfluxDB): one suite, both adapters."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from tests.results.support import HOUR, new_job, serving, visible
from tests.support import run
from workmesh.services.clients import Chunk, ReadQuery, SeriesKey
from workmesh.services.core.errors import InvalidArgument, NotFound

DAY = 24 * HOUR


def hourly(n: int, start: int = 0) -> np.ndarray:
    return (np.arange(n, dtype=np.int64) + start) * HOUR


def test_write_read_list_delete_round_trip(make_store):
    async def scenario():
        job = new_job()
        async with serving(make_store()) as client:
            ts = hourly(48)
            q = np.linspace(0.0, 1.0, 48) * 1e3 + 0.1  # values that must come back bit for bit
            writer = client.writer(job)
            await writer.series("heat", asset="b12", units={"Q": "kW", "T": "degC"}).write(ts, Q=q, T=q / 7)
            await writer.series("heat", asset="b13", units={"Q": "kW", "T": "degC"}).write(ts[:24], Q=q[:24], T=q[:24])
            refs = await writer.close()

            assert sorted((r.measurement, r.tags["asset"], r.field, r.count, r.unit) for r in refs) == [
                ("heat", "b12", "Q", 48, "kW"),
                ("heat", "b12", "T", 48, "degC"),
                ("heat", "b13", "Q", 24, "kW"),
                ("heat", "b13", "T", 24, "degC"),
            ]
            assert {r.database for r in refs} == {job} and all(r.host for r in refs)

            listed = await client.list_series(job)
            assert [
                (s.key.measurement, s.key.tags, s.fields, s.count, s.start, s.end, dict(s.units)) for s in listed
            ] == [
                ("heat", (("asset", "b12"),), ("Q", "T"), 48, 0, 47 * HOUR, {"Q": "kW", "T": "degC"}),
                ("heat", (("asset", "b13"),), ("Q", "T"), 24, 0, 23 * HOUR, {"Q": "kW", "T": "degC"}),
            ]

            got = await client.read(job, tags={"asset": "b12"})
            assert len(got) == 1
            np.testing.assert_array_equal(got[0].timestamps, ts)
            np.testing.assert_array_equal(got[0].fields["Q"], q)
            np.testing.assert_array_equal(got[0].fields["T"], q / 7)
            assert got[0].units == {"Q": "kW", "T": "degC"}

            assert await client.delete(job) == 2
            with pytest.raises(NotFound):
                await client.list_series(job)

    run(scenario())


def test_read_compares_jobs_on_one_time_axis(make_store):
    async def scenario():
        base, variant = new_job(), new_job()
        async with serving(make_store()) as client:
            await client.write(base, "heat", hourly(6), tags={"asset": "b1"}, Q=np.arange(6.0))
            await client.write(variant, "heat", hourly(4, start=2), tags={"asset": "b1"}, Q=np.arange(4.0) * 10)
            got = await client.read([base, variant], fields=["Q"])
            assert [s.job_id for s in got] == [base, variant]
            for s in got:
                np.testing.assert_array_equal(s.timestamps, hourly(6))
            np.testing.assert_array_equal(got[0].fields["Q"], np.arange(6.0))
            np.testing.assert_array_equal(got[1].fields["Q"], [np.nan, np.nan, 0, 10, 20, 30])

    run(scenario())


def test_filters_time_range_and_time_unit(make_store):
    async def scenario():
        job = new_job()
        async with serving(make_store()) as client:
            writer = client.writer(job, time_unit="s")
            secs = np.arange(10, dtype=np.int64) * 3600
            await writer.series("heat", asset="a").write(secs, Q=np.arange(10.0), T=np.ones(10))
            await writer.series("heat", asset="b").write(secs, Q=np.arange(10.0) + 100)
            await writer.series("power", asset="a").write(secs, P=np.arange(10.0) * 2)
            await writer.close()

            only_q = await client.read(
                job, measurement="heat", fields=["Q"], start=2 * 3600, end=5 * 3600, time_unit="s"
            )
            assert [(s.measurement, s.tags, list(s.fields)) for s in only_q] == [
                ("heat", {"asset": "a"}, ["Q"]),
                ("heat", {"asset": "b"}, ["Q"]),
            ]
            np.testing.assert_array_equal(only_q[0].timestamps, [7200, 10800, 14400])
            np.testing.assert_array_equal(only_q[1].fields["Q"], [102, 103, 104])

            power = await client.read(job, tags={"asset": "a"}, fields=["P"])
            assert [(s.measurement, list(s.fields)) for s in power] == [("power", ["P"])]
            np.testing.assert_array_equal(power[0].timestamps, secs * 10**9)  # default unit: ns

    run(scenario())


@pytest.mark.parametrize(
    "aggregate, expected", [("mean", [1.5, 5.0]), ("min", [0.0, 4.0]), ("max", [3.0, 6.0]), ("last", [3.0, 6.0])]
)
def test_downsampling(make_store, aggregate, expected):
    async def scenario():
        job = new_job()
        async with serving(make_store()) as client:
            values = np.array([0, 1, 2, 3, 4, np.nan, 6], dtype=float)  # two 4-hour windows, one NaN
            await client.write(job, "heat", hourly(7), Q=values)
            got = await client.read(job, window=4 * HOUR, aggregate=aggregate)
            np.testing.assert_array_equal(got[0].timestamps, [0, 4 * HOUR])
            np.testing.assert_allclose(got[0].fields["Q"], expected)

    run(scenario())


def test_nan_is_stored_as_missing(make_store):
    async def scenario():
        job = new_job()
        async with serving(make_store()) as client:
            q = np.array([1.0, np.nan, 3.0, np.nan])
            t = np.array([np.nan, np.nan, 30.0, 40.0])
            await client.write(job, "heat", hourly(4), Q=q, T=t)
            got = (await client.read(job))[0]
            # hour 1 has no value at all, so it is not stored; the other gaps read back as NaN
            np.testing.assert_array_equal(got.timestamps, hourly(4)[[0, 2, 3]])
            np.testing.assert_array_equal(got.fields["Q"], [1.0, 3.0, np.nan])
            np.testing.assert_array_equal(got.fields["T"], [np.nan, 30.0, 40.0])

    run(scenario())


def test_unknown_job_is_not_found(make_store):
    async def scenario():
        async with serving(make_store()) as client:
            for call in (client.list_series(new_job()), client.delete(new_job()), client.read([new_job()])):
                with pytest.raises(NotFound, match="job"):
                    await call

    run(scenario())


def test_writer_buffers_small_writes_into_chunks_and_flushes(make_store):
    async def scenario():
        job = new_job()
        async with serving(make_store()) as client:
            writer = client.writer(job, chunk_bytes=1600)  # 100 points x (time + 1 field) x 8 bytes
            handle = writer.series("heat", asset="b1")
            for hour in range(250):  # a simulation loop writing one step at a time
                await handle.write([hour * HOUR], Q=[float(hour)])
            assert writer.sent_chunks == 2
            await writer.flush()
            assert writer.acked_chunks == writer.sent_chunks == 3
            refs = await writer.close()
            assert [(r.field, r.count) for r in refs] == [("Q", 250)]
            got = (await client.read(job))[0]
            np.testing.assert_array_equal(got.fields["Q"], np.arange(250.0))

    run(scenario())


def test_blocking_writer_from_a_handler_thread(make_store):
    async def scenario():
        job = new_job()
        async with serving(make_store()) as client:
            writer = client.writer(job)
            blocking = writer.blocking()

            def handler() -> list:  # what a synchronous workflow handler does in its thread
                series = blocking.series("heat", asset="b1", units={"Q": "kW"})
                for day in range(3):
                    series.write(hourly(24, start=24 * day), Q=np.full(24, float(day)))
                return blocking.close()

            result: list = []
            thread = threading.Thread(target=lambda: result.extend(handler()))
            thread.start()
            await asyncio.to_thread(thread.join)
            assert [(r.field, r.count, r.unit) for r in result] == [("Q", 72, "kW")]
            with pytest.raises(RuntimeError, match="event loop"):
                blocking.flush()  # on the loop itself it would deadlock: refused
            listed = await client.list_series(job)
            assert listed[0].count == 72

    run(scenario())


def test_cancelled_store_write_leaves_nothing(make_store):
    async def scenario():
        store = make_store()
        job = new_job()
        try:
            chunks = [
                Chunk(
                    SeriesKey(job, "heat", (("asset", f"b{i}"),)),
                    hourly(2000),
                    {"Q": np.random.default_rng(i).random(2000)},
                )
                for i in range(40)
            ]
            task = asyncio.create_task(store.write(chunks))
            await asyncio.sleep(0)  # it starts (thread / first request) and cannot finish yet
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await visible(store, job) == []
            await store.write(chunks[:1])  # the job works normally afterwards
            assert [s.count for s in await store.list_series(job)] == [2000]
            got = await store.read([ReadQuery(job)])
            np.testing.assert_array_equal(got[0].fields["Q"], chunks[0].fields["Q"])
        finally:
            await store.close()

    run(scenario())


def test_failed_batch_leaves_nothing_of_itself(make_store):
    """A batch that fails after part of it reached the backend is rolled back completely."""

    async def scenario():
        store = make_store()
        job = new_job()
        try:
            await store.write([Chunk(SeriesKey(job, "heat", (("asset", "b0"),)), hourly(10), {"Q": np.zeros(10)})])
            good = [
                Chunk(SeriesKey(job, "heat", (("asset", f"b{i}"),)), hourly(6000, start=100), {"Q": np.ones(6000)})
                for i in range(1, 6)
            ]
            if store.kind == "parquet":  # stored timestamps must not be written again
                bad = Chunk(SeriesKey(job, "heat", (("asset", "b0"),)), hourly(5), {"Q": np.ones(5)})
            else:  # InfluxDB refuses a float where the series has a string field (after the good requests)
                db = store.database(job)
                async with store._http().post(
                    f"{store.host}/write", params={"db": db}, data=f'heat,asset=b9 R="text" {100 * HOUR}\n'.encode()
                ) as resp:
                    assert resp.status == 204
                bad = Chunk(SeriesKey(job, "heat", (("asset", "b9"),)), hourly(5, start=100), {"R": np.ones(5)})
            with pytest.raises(InvalidArgument):
                await store.write([*good, bad])
            listed = await store.list_series(job)
            assert [(s.key.tags, s.count) for s in listed if s.key.tags != (("asset", "b9"),)] == [
                ((("asset", "b0"),), 10)
            ]
        finally:
            await store.close()

    run(scenario())


def test_series_keep_their_own_fields(make_store):
    async def scenario():
        job = new_job()
        async with serving(make_store()) as client:
            writer = client.writer(job)
            await writer.series("heat", asset="a").write(hourly(3), Q=[1.0, 2.0, 3.0])
            await writer.series("heat", asset="b").write(hourly(3), T=[4.0, 5.0, 6.0])
            await writer.close()
            got = await client.read(job)
            assert [(s.tags["asset"], sorted(s.fields)) for s in got] == [("a", ["Q"]), ("b", ["T"])]
            assert [s.fields for s in await client.list_series(job)] == [("Q",), ("T",)]

    run(scenario())


def test_regular_and_irregular_runs_read_back_alike(make_store):
    """Parquet reads regular series without their time column; mixed runs must still be exact."""

    async def scenario():
        job = new_job()
        async with serving(make_store(), batch_values=1) as client:  # a part per chunk
            writer = client.writer(job)
            regular = writer.series("heat", asset="a")
            irregular = writer.series("heat", asset="b")
            await regular.write(hourly(5), Q=np.arange(5.0))
            await irregular.write(np.array([0, 1, 5, 6]) * HOUR, Q=np.arange(4.0))
            await writer.flush()
            await regular.write(hourly(3, start=5), Q=np.arange(5.0, 8.0))  # continues regularly
            await regular.write([9 * HOUR], Q=[9.0])  # a gap: the run is no longer regular
            await irregular.write(hourly(2, start=10), Q=[10.0, 11.0])
            await writer.close()
            got = {s.tags["asset"]: s for s in await client.read(job)}
            np.testing.assert_array_equal(got["a"].timestamps, np.array([0, 1, 2, 3, 4, 5, 6, 7, 9]) * HOUR)
            np.testing.assert_array_equal(got["a"].fields["Q"], [0, 1, 2, 3, 4, 5, 6, 7, 9])
            np.testing.assert_array_equal(got["b"].timestamps, np.array([0, 1, 5, 6, 10, 11]) * HOUR)
            np.testing.assert_array_equal(got["b"].fields["Q"], [0, 1, 2, 3, 10, 11])

    run(scenario())


def test_regular_timestamps_are_shared_read_only_and_right(make_store):
    async def scenario():
        base, variant = new_job(), new_job()
        async with serving(make_store()) as client:
            for job, scale in ((base, 1.0), (variant, 2.0)):
                writer = client.writer(job)
                for asset in ("a", "b"):
                    await writer.series("heat", asset=asset).write(hourly(5), Q=np.arange(5.0) * scale)
                await writer.series("heat", asset="c").write(hourly(3, start=1), Q=np.arange(3.0) * scale)
                await writer.close()
            got = await client.read([base, variant], fields=["Q"])
            assert [(s.job_id, s.tags["asset"]) for s in got] == [
                (job, asset) for asset in ("a", "b", "c") for job in (base, variant)
            ]
            for s in got:
                expected = hourly(3, start=1) if s.tags["asset"] == "c" else hourly(5)
                np.testing.assert_array_equal(s.timestamps, expected)
                assert not s.timestamps.flags.writeable
                scale = 1.0 if s.job_id == base else 2.0
                np.testing.assert_array_equal(s.fields["Q"], np.arange(len(expected)) * scale)
            # the series with the same regular axis share one array
            assert got[0].timestamps is got[1].timestamps is got[2].timestamps
            assert got[4].timestamps is not got[0].timestamps

    run(scenario())
