"""The Worker service's row of the access walk (tests/auth/test_rpc_table.py walks the others):
only the gateway calls a worker, and a worker asking for client certificates (mutual TLS) is
its guard, not caller tokens. Every Worker RPC, read from the service descriptor (a new one
without a row fails), is called on such a worker with the gateway's certificate (the call
reaches the handler: its own status), with no certificate and with one of another CA (refused
before any handler runs: UNAVAILABLE)."""

from __future__ import annotations

import contextlib

import grpc

from tests.gateway.mesh import value
from tests.support import run
from tests.tls.certs import CA
from tests.tls.test_mesh_tls import pki  # noqa: F401 - the fixture
from workmesh.services.core.tls import TlsConfig
from workmesh.v1 import worker_pb2 as w
from workmesh.v1 import worker_pb2_grpc
from workmesh.workers import Worker, WorkerConfig
from workmesh.workers.examples.basic import echo

OK, MISSING, UNAVAILABLE = grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE


async def _drain(call) -> list:
    return [item async for item in call]


async def _session(stub) -> None:
    """A session half-closed at once; its status, even when the write never went out."""
    call = stub.Session(timeout=5)
    with contextlib.suppress(Exception):  # a refused channel fails the half-close on the client
        await call.done_writing()
    with contextlib.suppress(grpc.aio.AioRpcError):
        await _drain(call)
    code = await call.code()
    if code != OK:
        raise grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=await call.details())


# RPC → (the call, its status with the gateway's certificate)
CALLS = {
    "Describe": (lambda stub: stub.Describe(w.DescribeRequest(), timeout=5), OK),
    "Execute": (
        lambda stub: _drain(
            stub.Execute(
                w.ExecuteRequest(job_id="walk-1", workflow_type="echo", params={"message": value("hi")}, attempt=1),
                timeout=10,
            )
        ),
        OK,
    ),
    "Cancel": (lambda stub: stub.Cancel(w.CancelRequest(job_id="no-such-job"), timeout=5), OK),
    "Attach": (lambda stub: _drain(stub.Attach(w.AttachRequest(job_id="no-such-job"), timeout=5)), MISSING),
    "Session": (lambda stub: _session(stub), OK),
}


def test_the_worker_table_has_a_row_for_every_worker_rpc():
    (service,) = w.DESCRIPTOR.services_by_name.values()
    assert {m.name for m in service.methods} == set(CALLS)


async def _status(call) -> tuple[grpc.StatusCode, str]:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return OK, ""


def test_every_worker_rpc_needs_the_gateways_certificate(pki, tmp_path):  # noqa: F811
    ca, gw_pair, wk_pair = pki
    stranger = CA(tmp_path, name="other CA").issue("intruder")
    callers = {
        "gateway": (TlsConfig(cert_file=str(gw_pair.cert), key_file=str(gw_pair.key), ca_file=str(ca.pem)), None),
        "no_certificate": (TlsConfig(ca_file=str(ca.pem)), UNAVAILABLE),
        "other_ca": (
            TlsConfig(cert_file=str(stranger.cert), key_file=str(stranger.key), ca_file=str(ca.pem)),
            UNAVAILABLE,
        ),
    }

    async def main():
        worker = Worker([echo], capacity=1)
        tls = TlsConfig(cert_file=str(wk_pair.cert), key_file=str(wk_pair.key), ca_file=str(ca.pem), client_auth=True)
        await worker.start(WorkerConfig(register=False, drain_grace=0.0, tls=tls))
        failures = []
        try:
            for caller, (client, refused) in callers.items():
                async with client.aio_channel(f"127.0.0.1:{worker.port}") as channel:
                    stub = worker_pb2_grpc.WorkerStub(channel)
                    for rpc, (call, allowed) in CALLS.items():
                        expected = refused or allowed
                        code, details = await _status(call(stub))
                        if code != expected:
                            failures.append(f"{rpc} by {caller}: {code.name} ({details}), expected {expected.name}")
        finally:
            await worker.stop(grace=0)
        assert not failures, "\n".join(failures)

    run(main())
