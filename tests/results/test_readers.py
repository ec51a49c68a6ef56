"""External readers of a job on the InfluxDB store, against a real influxd with
``auth-enabled = true``: the reader user the results service creates can read its job's
database and nothing else (InfluxDB's own /query and /write answer 401/403), revoking it or
deleting the job removes the user, and bad requests get the right status."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

import grpc
import numpy as np
import pytest

from tests.fixtures.influx import INFLUX_ADMIN
from tests.results.support import HOUR, new_job, serving
from tests.support import run
from workmesh.services.results import InfluxConfig, InfluxStore
from workmesh.v1 import results_pb2, results_pb2_grpc


def influx_http(url: str, path: str, user: str, password: str, body: bytes, **params: str) -> tuple[int, str]:
    """POST to InfluxDB's HTTP API as (user, password); returns (status, body)."""
    query = urllib.parse.urlencode({"u": user, "p": password, **params})
    try:
        with urllib.request.urlopen(f"{url}{path}?{query}", data=body, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def select(url: str, user: str, password: str, db: str, q: str = "SELECT * FROM heat") -> tuple[int, str]:
    return influx_http(url, "/query", user, password, urllib.parse.urlencode({"q": q}).encode(), db=db)


def users(url: str) -> str:
    """SHOW USERS as the admin (the JSON body)."""
    status, body = influx_http(url, "/query", *INFLUX_ADMIN, urllib.parse.urlencode({"q": "SHOW USERS"}).encode())
    assert status == 200, body
    return body


async def write_job(client, job: str) -> None:
    ts = np.arange(5, dtype=np.int64) * HOUR
    await client.write(job, "heat", ts, tags={"asset": "b1"}, Q=np.arange(5, dtype=float))


def store_of(server) -> InfluxStore:
    user, password = INFLUX_ADMIN
    return InfluxStore(InfluxConfig(url=server.url, username=user, password=password))


def test_a_reader_reads_its_jobs_database_only(influxd_auth):
    url = influxd_auth.url

    async def scenario():
        job, other = new_job(), new_job()
        async with serving(store_of(influxd_auth)) as client:
            await write_job(client, job)
            await write_job(client, other)
            stub = results_pb2_grpc.ResultsStub(client._channel)
            reply = await stub.GrantReader(results_pb2.GrantReaderRequest(job_id=job, reader="dashboard"))
            assert (reply.store, reply.host, reply.database) == ("influxdb", url, job)
            assert reply.username == f"dashboard@{job}" and len(reply.password) >= 24
            refs = await client.write(job, "heat", np.array([10 * HOUR]), Q=np.array([1.0]))
            assert (refs[0].store, refs[0].host, refs[0].database) == (reply.store, reply.host, reply.database)
            user, password = reply.username, reply.password

            status, body = select(url, user, password, job)
            assert status == 200 and '"heat"' in body and "b1" in body, body
            status, body = select(url, user, password, other)
            assert status == 403 and f"requires READ on {other}" in body, body
            status, body = select(url, user, "wrong-password", job)
            assert status == 401, body
            for db in (job, other):
                status, body = influx_http(url, "/write", user, password, b"heat,asset=b1 Q=9 1", db=db)
                assert status == 403 and "not authorized to write" in body, body
            drop = urllib.parse.urlencode({"q": "DROP MEASUREMENT heat"}).encode()
            status, body = influx_http(url, "/query", user, password, drop, db=job)
            assert status == 403, body
            status, body = select(url, *INFLUX_ADMIN, job, "SELECT count(Q) FROM heat WHERE Q = 9")
            assert status == 200 and '"series"' not in body, body  # nothing was written

            with pytest.raises(grpc.aio.AioRpcError) as again:
                await stub.GrantReader(results_pb2.GrantReaderRequest(job_id=job, reader="dashboard"))
            assert again.value.code() == grpc.StatusCode.ALREADY_EXISTS and "reader" in again.value.details()

            await stub.RevokeReader(results_pb2.RevokeReaderRequest(job_id=job, reader="dashboard"))
            status, body = select(url, user, password, job)
            assert status == 401, body
            assert user not in users(url)
            with pytest.raises(grpc.aio.AioRpcError) as gone:
                await stub.RevokeReader(results_pb2.RevokeReaderRequest(job_id=job, reader="dashboard"))
            assert gone.value.code() == grpc.StatusCode.NOT_FOUND and "dashboard" in gone.value.details()

    run(scenario())


def test_deleting_the_job_removes_its_readers_and_a_restart_keeps_them(influxd_auth):
    url = influxd_auth.url

    async def scenario():
        job = new_job()
        async with serving(store_of(influxd_auth)) as client:
            await write_job(client, job)
            stub = results_pb2_grpc.ResultsStub(client._channel)
            first = await stub.GrantReader(results_pb2.GrantReaderRequest(job_id=job, reader="a"))
            second = await stub.GrantReader(results_pb2.GrantReaderRequest(job_id=job, reader="b-2"))
            # A retried attempt starting over drops the database (and InfluxDB its grants): the
            # readers read the new series all the same.
            await stub.DeleteSeries(results_pb2.DeleteSeriesRequest(job_id=job, restart=True))
            await write_job(client, job)
            assert select(url, first.username, first.password, job)[0] == 200
            await client.delete(job)
            listed = users(url)
            assert first.username not in listed and second.username not in listed
            assert select(url, second.username, second.password, job)[0] == 401

    run(scenario())


@pytest.mark.parametrize(
    ("job", "reader", "code", "words"),
    [
        ("", "r", grpc.StatusCode.INVALID_ARGUMENT, "job_id"),
        ("JOB", "Bad_Name", grpc.StatusCode.INVALID_ARGUMENT, "reader: 'Bad_Name' is not a valid reader name"),
        ("JOB", "", grpc.StatusCode.INVALID_ARGUMENT, "reader"),
        ("JOB", "x" * 33, grpc.StatusCode.INVALID_ARGUMENT, "at most 32 characters"),
        ("job-never-written", "r", grpc.StatusCode.NOT_FOUND, "job-never-written"),
    ],
)
def test_bad_grants_are_refused_and_create_nothing(influxd_auth, job, reader, code, words):
    async def scenario():
        real = new_job()
        async with serving(store_of(influxd_auth)) as client:
            await write_job(client, real)
            stub = results_pb2_grpc.ResultsStub(client._channel)
            before = users(influxd_auth.url)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GrantReader(results_pb2.GrantReaderRequest(job_id=job.replace("JOB", real), reader=reader))
            assert err.value.code() == code and words in err.value.details()
            assert users(influxd_auth.url) == before

    run(scenario())
