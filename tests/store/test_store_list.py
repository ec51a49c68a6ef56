"""JobStore.list_jobs filters by labels (owner = the workmesh.user label) and by parent job, on
every adapter, with pages that keep the newest-first order."""

from __future__ import annotations

import uuid

from tests.store.conftest import Backend, run
from workmesh.services.gateway.store import JobRecord
from workmesh.v1 import common_pb2 as pb


def new_job(labels: dict[str, str], parent_id: str = "", workflow_type: str = "heat-demand") -> JobRecord:
    return JobRecord(
        job_id=uuid.uuid4().hex,
        workflow_type=workflow_type,
        params={"buildings": pb.ParamValue(int_value=10)},
        labels=labels,
        parent_id=parent_id,
        step_name="s" if parent_id else "",
    )


def test_list_filters_by_every_label_given(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            made = []
            for i in range(8):
                labels = {"workmesh.user": "ana" if i % 2 == 0 else "bob", "project": "x" if i < 4 else "y"}
                if i == 5:
                    labels["odd key/with.dots"] = "v 1"
                job, _ = await store.create(new_job(labels, workflow_type="a" if i % 3 else "b"))
                made.append(job)
            ids = [j.job_id for j in made]

            async def listed(**kw) -> list[str]:
                return [j.job_id for j in await store.list_jobs(**kw)]

            assert await listed(labels={"workmesh.user": "ana"}) == ids[6::-2]
            assert await listed(labels={"project": "x"}) == ids[3::-1]
            assert await listed(labels={"workmesh.user": "bob", "project": "y"}) == [ids[7], ids[5]]
            assert await listed(labels={"odd key/with.dots": "v 1"}) == [ids[5]]
            assert await listed(labels={"project": "z"}) == []
            assert await listed(labels={"no-such-key": ""}) == []  # absent is not the empty value
            assert await listed(labels={"project": "x"}, workflow_type="b") == [ids[3], ids[0]]
            pages, after = [], None
            while page := await store.list_jobs(labels={"workmesh.user": "ana"}, limit=3, after=after):
                pages.append([j.job_id for j in page])
                after = page[-1].job_id
            assert pages == [[ids[6], ids[4], ids[2]], [ids[0]]]

    run(body())


def test_list_filters_by_parent(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            parent, _ = await store.create(new_job({"workmesh.user": "ana"}))
            other, _ = await store.create(new_job({"workmesh.user": "ana"}))
            steps = []
            for i in range(5):
                of = parent.job_id if i != 2 else other.job_id
                step, _ = await store.create(new_job({"workmesh.user": "ana"}, of))
                steps.append(step.job_id)
            mine = [steps[4], steps[3], steps[1], steps[0]]
            assert [j.job_id for j in await store.list_jobs(parent_id=parent.job_id)] == mine
            assert [j.job_id for j in await store.list_jobs(parent_id=other.job_id)] == [steps[2]]
            assert await store.list_jobs(parent_id="no-such-job") == []
            page = await store.list_jobs(parent_id=parent.job_id, limit=2)
            rest = await store.list_jobs(parent_id=parent.job_id, limit=2, after=page[-1].job_id)
            assert [j.job_id for j in page + rest] == mine
            assert all(j.parent_id == parent.job_id for j in page + rest)
            both = await store.list_jobs(parent_id=parent.job_id, labels={"workmesh.user": "bob"})
            assert both == []

    run(body())


def test_the_owner_filter_reads_the_owner_index(sql_backend: Backend) -> None:
    """The query ListJobs sends for one owner's jobs is answered from ix_jobs_owner_pos (the
    migration's index matches the expression the query is written with)."""
    import sqlalchemy as sa

    from workmesh.services.gateway.store.sql._ops import jobs_query, read_jobs

    async def body() -> None:
        async with sql_backend.open() as store:
            for i in range(20):
                await store.create(new_job({"workmesh.user": f"u{i % 4}"}))

            def plan(conn: sa.Connection) -> tuple[str, list[str]]:
                owner = {"workmesh.user": "u1"}
                found = [r.job_id for r in read_jobs(conn, None, (), 3, None, owner)]
                query = jobs_query(None, (), 3, None, owner)
                compiled = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
                if conn.dialect.name == "sqlite":
                    rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
                    return " ".join(str(r[-1]) for r in rows), found
                conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # 20 rows: it would rather scan
                rows = conn.exec_driver_sql(f"EXPLAIN {compiled}").all()
                return " ".join(r[0] for r in rows), found

            text, found = await store._read(plan)
            assert len(found) == 3
            assert "ix_jobs_owner_pos" in text, text

    run(body())
