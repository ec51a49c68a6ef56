"""The scheduler's durable state in the SQL store: usage shared by replicas, finished runtimes."""

from __future__ import annotations

import asyncio

import pytest

from tests.store.conftest import Backend, run
from workmesh.services.gateway.dispatch._fairshare import Owner

A, B = Owner("t", "a"), Owner("t", "b")


def test_usage_survives_the_store_and_replicas_add_to_the_same_rows(sql_backend: Backend) -> None:
    async def body() -> None:
        async with sql_backend.open() as one, sql_backend.open() as two:
            await one.add_usage({A: (10.0, 1000.0)}, 3600.0)
            # Two replicas charging the same owner at once: both charges count.
            await asyncio.gather(
                *(
                    store.add_usage({A: (5.0, 1000.0), B: (1.0, 1000.0)}, 3600.0)
                    for store in (one, two)
                    for _ in range(5)
                )
            )
            usage = await two.add_usage({}, 3600.0)
            assert usage[A] == (pytest.approx(60.0), 1000.0)
            assert usage[B] == (pytest.approx(10.0), 1000.0)
            # A later charge decays the stored value to its own time first.
            usage = await one.add_usage({B: (0.0, 1000.0 + 3600.0)}, 3600.0)
            assert usage[B] == (pytest.approx(5.0), 4600.0)
        async with sql_backend.open() as again:
            assert (await again.load_usage())[A][0] == pytest.approx(60.0)

    run(body())


def test_runtimes_are_kept_newest_last(sql_backend: Backend) -> None:
    async def body() -> None:
        async with sql_backend.open() as store:
            assert await store.load_runtimes(10) == []
            await store.add_runtimes(
                [("heat", "1.0", {"buildings": float(b)}, b / 10, 100.0 + b) for b in range(1, 21)]
            )
            newest = await store.load_runtimes(5)
            assert [r[2]["buildings"] for r in newest] == [16.0, 17.0, 18.0, 19.0, 20.0]
            assert newest[0][:2] == ("heat", "1.0") and newest[0][3] == pytest.approx(1.6)

    run(body())
