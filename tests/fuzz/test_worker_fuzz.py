"""Property-based fuzz of every Worker RPC against a real worker process (issue 9).

Requests go straight to the worker, as a gateway in another language (or a confused one) might
send them: Describe, Execute, Attach, Cancel and Session with random and garbage commands. No
UNKNOWN or INTERNAL, ever (per call or per Session item); only the codes named below, each with
its reason. After each test the jobs the fuzz started are cancelled and the worker must run
nothing, still serve the gateway (its free capacity is back) and not have exited.
"""

from __future__ import annotations

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz import messages as m
from tests.fuzz.mesh import Code, call, check_code, drain, raw_call, running_mesh, settle
from tests.fuzz.test_gateway_fuzz import FUZZ, LONG, QUICK
from tests.support import eventually
from workmesh.v1 import worker_pb2 as w

BAD_INPUT = {Code.INVALID_ARGUMENT: "a client's mistake, named field and rule"}
EXECUTE = {
    **BAD_INPUT,
    Code.NOT_FOUND: "a workflow type this worker does not serve",
    Code.RESOURCE_EXHAUSTED: "the worker is at capacity",
    Code.DEADLINE_EXCEEDED: "the stream follows a running job past the client's deadline",
}
ATTACH = {
    **BAD_INPUT,
    Code.NOT_FOUND: "a job this worker does not know",
    Code.DEADLINE_EXCEEDED: "the stream follows a running job past the client's deadline",
}
SESSION = {**BAD_INPUT, Code.DEADLINE_EXCEEDED: "the session stays open until the client ends it"}
SESSION_ITEM = {code.value[0]: code for code in {**EXECUTE, **ATTACH}}
WORKER = "/workmesh.v1.Worker/"
METHODS = [
    ("Describe", False, False),
    ("Execute", False, True),
    ("Cancel", False, False),
    ("Attach", False, True),
    ("Session", True, True),
]
GARBAGE = {**EXECUTE, **ATTACH, **SESSION}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    with running_mesh(tmp_path_factory, "fuzz-worker") as started:
        yield started


@pytest.fixture
def baseline(mesh):
    before = mesh.free_capacity()
    yield before
    cancel_started(mesh)
    settle(mesh, before)


def cancel_started(mesh) -> None:
    """Cancel every job the fuzz may have started on the worker, until it runs none."""
    stub = mesh.worker_stub

    def idle():
        for job_id in set(mesh.job_ids) | set(m.POOL):
            stub.Cancel(w.CancelRequest(job_id=job_id, reason="fuzz over"), timeout=10)
        return stub.Describe(w.DescribeRequest(), timeout=10).running == 0

    eventually(idle, timeout=60, interval=0.5)


def execute_one(mesh, request: w.ExecuteRequest) -> None:
    if request.job_id not in m.POOL:
        mesh.job_ids.append(request.job_id)
    drain(mesh, mesh.worker_stub.Execute(request, timeout=1.0), EXECUTE, "Execute", limit=100)


def attach_one(mesh, job_id: str, after_seq: int) -> None:
    drain(
        mesh,
        mesh.worker_stub.Attach(w.AttachRequest(job_id=job_id, after_seq=after_seq), timeout=1.0),
        ATTACH,
        "Attach",
        limit=100,
    )


def session_one(mesh, batches: list[list[w.SessionCommand]]) -> None:
    for batch in batches:
        for command in batch:
            if command.WhichOneof("command") == "execute" and command.execute.job_id not in m.POOL:
                mesh.job_ids.append(command.execute.job_id)
    mesh.requests += 1
    try:
        for reply in mesh.worker_stub.Session(iter([w.SessionRequest(commands=b) for b in batches]), timeout=1.5):
            for event in reply.events:
                if event.WhichOneof("payload") == "error":
                    code = SESSION_ITEM.get(event.error.code)
                    assert code is not None, f"Session item error code {event.error.code}: {event.error.message}"
                    check_code(code, event.error.message, {**EXECUTE, **ATTACH}, "Session item")
    except grpc.RpcError as exc:
        check_code(exc.code(), exc.details() or "", SESSION, "Session")


@settings(max_examples=QUICK, **FUZZ)
@given(request=m.EXECUTES)
def test_fuzz_execute(mesh, baseline, request):
    execute_one(mesh, request)


@settings(max_examples=QUICK, **FUZZ)
@given(
    kind=st.sampled_from(["attach", "cancel", "describe"]), job_id=m.WORKER_JOB_IDS, after_seq=m.UINT64, reason=m.TEXT
)
def test_fuzz_attach_cancel_describe(mesh, baseline, kind, job_id, after_seq, reason):
    if kind == "attach":
        attach_one(mesh, job_id, after_seq)
    elif kind == "cancel":
        call(mesh, mesh.worker_stub.Cancel, w.CancelRequest(job_id=job_id, reason=reason), BAD_INPUT, "Cancel")
    else:
        call(mesh, mesh.worker_stub.Describe, w.DescribeRequest(), {}, "Describe")


@settings(max_examples=QUICK // 2, **FUZZ)
@given(batches=st.lists(st.lists(m.SESSION_COMMANDS, max_size=6), max_size=3))
def test_fuzz_session(mesh, baseline, batches):
    session_one(mesh, batches)


@settings(max_examples=QUICK, **FUZZ)
@given(method=st.sampled_from(METHODS), payload=st.binary(max_size=300))
def test_fuzz_worker_garbage_bytes(mesh, baseline, method, payload):
    name, client_stream, server_stream = method
    raw_call(mesh, mesh.worker_channel, WORKER + name, payload, GARBAGE, (client_stream, server_stream))


@pytest.mark.fuzz_long
@pytest.mark.timeout(1800)
def test_fuzz_worker_long(mesh, baseline):
    start = mesh.requests
    requests = st.one_of(
        m.EXECUTES.map(lambda r: ("execute", r)),
        st.tuples(m.WORKER_JOB_IDS, m.UINT64).map(lambda t: ("attach", t)),
        m.WORKER_JOB_IDS.map(lambda j: ("cancel", j)),
        st.lists(st.lists(m.SESSION_COMMANDS, max_size=4), max_size=2).map(lambda b: ("session", b)),
        st.tuples(st.sampled_from(METHODS), st.binary(max_size=300)).map(lambda t: ("garbage", t)),
    )

    @settings(max_examples=LONG, **FUZZ)
    @given(request=requests)
    def one(request):
        kind, body = request
        if kind == "execute":
            execute_one(mesh, body)
        elif kind == "attach":
            attach_one(mesh, *body)
        elif kind == "cancel":
            call(mesh, mesh.worker_stub.Cancel, w.CancelRequest(job_id=body), BAD_INPUT, "Cancel")
        elif kind == "session":
            session_one(mesh, body)
        else:
            (name, client_stream, server_stream), payload = body
            raw_call(mesh, mesh.worker_channel, WORKER + name, payload, GARBAGE, (client_stream, server_stream))

    one()
    assert mesh.requests - start >= 10_000
