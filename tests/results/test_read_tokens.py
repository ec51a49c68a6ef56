"""External readers of a job on the Parquet store: an expiring read token from GrantReader
(results service with authentication on, in process) reads that job's series, and is refused
for another job and once it has expired; GrantReader itself needs the gateway's grant
capability of the job."""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest

from tests.auth.keys import SECRET
from tests.results.support import HOUR, new_job, serving
from tests.support import eventually_async, run
from workmesh.services.core.auth import CAPABILITY_METADATA, AuthConfig, JwtConfig, SeriesCapabilities
from workmesh.services.core.errors import WorkmeshError
from workmesh.services.results import ParquetStore
from workmesh.v1 import results_pb2, results_pb2_grpc

KEY = "k" * 40
# No clock skew allowed, so that a token is refused right at its expiry.
AUTH = AuthConfig(enabled=True, jwt=JwtConfig(secret=SECRET, leeway=0), series_key=KEY)
CAPS = SeriesCapabilities(KEY, leeway=0)


def with_capability(token: str) -> tuple[tuple[str, str]]:
    return ((CAPABILITY_METADATA, token),)


async def write_job(client, job: str) -> None:
    writer = client.writer(job, capability=CAPS.issue(job, 1, tenant="acme", subject="alice"))
    await writer.series("heat", asset="b1").write(np.arange(4, dtype=np.int64) * HOUR, Q=np.arange(4.0))
    await writer.close()


def test_a_read_token_reads_its_job_only_and_expires(tmp_path):
    async def scenario():
        job, other = new_job(), new_job()
        async with serving(ParquetStore(tmp_path / "series"), auth=AUTH) as client:
            await write_job(client, job)
            await write_job(client, other)
            stub = results_pb2_grpc.ResultsStub(client._channel)
            request = results_pb2.GrantReaderRequest(job_id=job, reader="dashboard", ttl_seconds=3)
            write_capability = CAPS.issue(job, 1, tenant="acme", subject="alice")
            for metadata, code in (
                ((), grpc.StatusCode.UNAUTHENTICATED),
                (with_capability(CAPS.granting(other)), grpc.StatusCode.PERMISSION_DENIED),
                (with_capability(write_capability), grpc.StatusCode.PERMISSION_DENIED),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await stub.GrantReader(request, metadata=metadata)
                assert refused.value.code() == code
            reply = await stub.GrantReader(request, metadata=with_capability(CAPS.granting(job)))
            assert (reply.store, reply.host, reply.database) == ("parquet", f"127.0.0.1:{client.port}", job)
            assert reply.token and not reply.password and reply.expires_at >= int(time.time())
            token = with_capability(reply.token)

            got = await client.read(job, metadata=token)
            np.testing.assert_array_equal(got[0].fields["Q"], np.arange(4.0))
            listed = await stub.ListSeries(results_pb2.ListSeriesRequest(job_id=job), metadata=token)
            assert [s.key.measurement for s in listed.series] == ["heat"]
            for call in (
                stub.ListSeries(results_pb2.ListSeriesRequest(job_id=other), metadata=token),
                client.read([job, other], metadata=token),
            ):
                with pytest.raises((grpc.aio.AioRpcError, WorkmeshError)) as denied:
                    await call
                code = denied.value.code
                assert (code() if callable(code) else code) == grpc.StatusCode.PERMISSION_DENIED

            async def expired() -> bool:
                try:
                    await stub.ListSeries(results_pb2.ListSeriesRequest(job_id=job), metadata=token)
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() == grpc.StatusCode.UNAUTHENTICATED and "expired" in exc.details()
                    return True
                return False

            await eventually_async(expired, timeout=reply.expires_at - time.time() + 5, interval=0.2)
            assert time.time() >= reply.expires_at  # refused because it expired, not before

            with pytest.raises(grpc.aio.AioRpcError) as revoke:
                await stub.RevokeReader(
                    results_pb2.RevokeReaderRequest(job_id=job, reader="dashboard"),
                    metadata=with_capability(CAPS.granting(job)),
                )
            assert revoke.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    run(scenario())


def test_without_authentication_a_parquet_store_issues_no_read_token(tmp_path):
    async def scenario():
        job = new_job()
        async with serving(ParquetStore(tmp_path / "series")) as client:
            await client.write(job, "heat", np.array([0]), Q=np.array([1.0]))
            stub = results_pb2_grpc.ResultsStub(client._channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GrantReader(results_pb2.GrantReaderRequest(job_id=job, reader="r"))
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "authentication" in err.value.details()

    run(scenario())
