"""SQL-store specifics: database URLs, migrations, group commits."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from tests.store.conftest import Backend, run
from tests.store.test_store_contract import new_job, progress
from tests.support import always_async
from workmesh.services.core.errors import InvalidArgument, Unavailable
from workmesh.services.gateway.store.sql._engine import MIGRATIONS, normalize_url
from workmesh.services.gateway.store.sql._schema import metadata
from workmesh.services.gateway.store.sql._store import SqlJobStore


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u:p@127.0.0.1:5432/jobs", "postgresql+psycopg"),
        ("postgres://u:p@127.0.0.1/jobs", "postgresql+psycopg"),
        ("postgresql+psycopg://u@127.0.0.1/jobs", "postgresql+psycopg"),
        ("sqlite:///var/lib/workmesh/jobs.db", "sqlite+pysqlite"),
    ],
)
def test_database_urls_are_normalised(given: str, driver: str) -> None:
    url = normalize_url(given)
    assert url.drivername == driver
    assert url.database == make_db(given)


def make_db(given: str) -> str:
    return sa.make_url(given.replace("postgres://", "postgresql://")).database


@pytest.mark.parametrize(
    ("given", "rule"),
    [
        ("sqlite://", "SQLite needs a file"),
        ("sqlite:///:memory:", "SQLite needs a file"),
        ("mysql://u@h/db", "unsupported database 'mysql'"),
        ("not a url", "not a database URL"),
    ],
)
def test_bad_database_urls_name_the_setting_and_the_rule(given: str, rule: str) -> None:
    with pytest.raises(InvalidArgument, match=rule) as caught:
        SqlJobStore(given)
    assert caught.value.field == "DATABASE_URL"


def test_migrations_create_exactly_the_tables_of_the_code(sql_backend: Backend) -> None:
    async def body() -> None:
        async with sql_backend.open() as store:

            def compare(conn: sa.Connection) -> tuple[list, str | None]:
                context = MigrationContext.configure(conn)
                return compare_metadata(context, metadata), context.get_current_revision()

            diff, revision = await store._read(compare)
            head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
            assert diff == []
            assert revision == head

    run(body())


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def test_concurrent_appends_share_commits(sql_backend: Backend) -> None:
    """Group commit: 64 concurrent appenders need fewer transactions than appends."""

    async def body() -> None:
        async with sql_backend.open() as store:
            jobs = [(await store.create(new_job()))[0].job_id for _ in range(64)]
            before = store.commits
            await asyncio.gather(*(store.append(job, [progress(i / 10)]) for i in range(5) for job in jobs))
            assert store.commits - before < 64 * 5
            for job in jobs:
                assert [e.seq for e in await store.events(job)] == [1, 2, 3, 4, 5, 6]

    run(body())


def test_a_failing_operation_does_not_spoil_its_batch(sql_backend: Backend) -> None:
    async def body() -> None:
        async with sql_backend.open() as store:
            good = [(await store.create(new_job()))[0].job_id for _ in range(10)]
            calls = [store.append(job, [progress(0.5)]) for job in good]
            calls += [store.append("missing", [progress(0.5)]), store.create(new_job(job_id=good[0]))]
            results = await asyncio.gather(*calls, return_exceptions=True)
            assert [r[0].seq for r in results[:10]] == [2] * 10
            assert [type(r).__name__ for r in results[10:]] == ["NotFound", "FailedPrecondition"]

    run(body())


def test_close_answers_queued_writes_and_refuses_new_ones(sql_backend: Backend) -> None:
    async def body() -> None:
        store = sql_backend()
        await store.start()
        job, _ = await store.create(new_job())
        waiter = asyncio.create_task(store.wait(job.job_id, 1, timeout=60))
        pending = [asyncio.create_task(store.append(job.job_id, [progress(i / 100)])) for i in range(50)]
        await asyncio.sleep(0)  # the appends are queued, most not yet committed
        await store.close()
        await asyncio.wait_for(waiter, 10)
        results = await asyncio.gather(*pending, return_exceptions=True)
        acknowledged = sorted(r[0].seq for r in results if isinstance(r, list))
        assert all(isinstance(r, list) or type(r).__name__ == "Unavailable" for r in results)
        with pytest.raises(Unavailable):
            await store.create(new_job())
        async with sql_backend.open() as reopened:
            stored = [e.seq for e in await reopened.events(job.job_id)]
            assert stored == [1, *acknowledged]

    run(body())


def test_notification_payloads_parse_to_last_seqs() -> None:
    from workmesh.services.gateway.store.sql._notify import parse_payload

    assert parse_payload("a 3,b 12,c -1") == {"a": 3, "b": 12, "c": -1}
    assert parse_payload("a 3,garbage,,d x") == {"a": 3}


def test_commit_marker_tells_a_committed_batch_from_a_lost_one(sql_backend: Backend) -> None:
    """After a COMMIT whose answer was lost, the writer looks for the batch's first event."""
    from workmesh.services.gateway.store.sql._ops import marker_committed, payload_of

    async def body() -> None:
        async with sql_backend.open() as store:
            job, _ = await store.create(new_job())
            [event] = await store.append(job.job_id, [progress(0.5)])
            payload = payload_of(event)
            assert await store._read(lambda conn: marker_committed(conn, (job.job_id, 2, payload)))
            other = payload_of(progress(0.6))
            assert not await store._read(lambda conn: marker_committed(conn, (job.job_id, 2, other)))
            assert not await store._read(lambda conn: marker_committed(conn, (job.job_id, 3, payload)))

    run(body())


def test_postgres_url_options_reach_every_connection(request) -> None:
    """Session settings in DATABASE_URL (here synchronous_commit, see README "What survives
    what") apply to the store's connections, and its LISTEN connection still connects."""
    from tests.fixtures.postgres import skip_reason

    if skip_reason():
        pytest.skip(skip_reason())
    url = request.getfixturevalue("postgres_url") + "?options=-c%20synchronous_commit%3Doff"

    async def body() -> None:
        async with SqlJobStore(url, retry_for=10.0) as one, SqlJobStore(url, retry_for=10.0) as two:
            setting = await one._read(lambda conn: conn.execute(sa.text("SHOW synchronous_commit")).scalar())
            assert setting == "off"
            job, _ = await one.create(new_job())
            waiter = asyncio.create_task(two.wait(job.job_id, 1, timeout=60))  # woken by NOTIFY only
            await always_async(lambda: not waiter.done())  # waiting before the append, not after
            await one.append(job.job_id, [progress(0.5)])
            await asyncio.wait_for(waiter, 10)

    run(body())
