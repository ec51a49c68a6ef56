"""Property-based fuzz of every Gateway RPC against real processes (issue 9).

Each example sends one request (or one stream) built by ``tests.fuzz.messages`` and checks its
status: never UNKNOWN or INTERNAL, and otherwise only the codes named below, each with the
reason it is right. After each test: no process exited, no job is left non-terminal, free
capacity is what it was at the start and the gateway's self-check (CheckInvariants) is clean.
The quick profile runs in the default suite; ``-m fuzz_long`` runs ≥ 10,000 requests.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import messages as m
from tests.fuzz.mesh import Code, call, check_code, drain, raw_call, running_mesh, settle
from workmesh.v1 import gateway_pb2 as g

QUICK = 60  # examples per test in the default suite (6 tests: a few hundred requests)
LONG = 10_500  # requests of the long profile
FUZZ = dict(
    deadline=None,
    derandomize=False,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

BAD_INPUT = {Code.INVALID_ARGUMENT: "a client's mistake, named field and rule"}
SUBMIT = {**BAD_INPUT, Code.NOT_FOUND: "unknown workflow type"}
JOB = {**BAD_INPUT, Code.NOT_FOUND: "unknown (or deleted) job id"}
CANCEL = {**JOB, Code.FAILED_PRECONDITION: "the job is already terminal"}
WATCH = {**JOB, Code.DEADLINE_EXCEEDED: "the stream follows a live job past the client's deadline"}
RUNJOBS = {**BAD_INPUT, Code.DEADLINE_EXCEEDED: "the stream lasts until its jobs end; the client's deadline cut it"}
# Bytes that happen to decode (the empty string is a valid message of every type) are an
# ordinary request of that RPC and may get any of its answers.
GARBAGE = {**SUBMIT, **CANCEL, **WATCH, **RUNJOBS}
ITEM_CODES = {code.value[0]: code for code in SUBMIT}
GATEWAY = "/workmesh.v1.Gateway/"
# (method, client streams, server streams)
METHODS = [
    ("ListWorkflowTypes", False, False),
    ("WatchWorkflowTypes", False, True),
    ("SubmitJob", False, False),
    ("WatchJob", False, True),
    ("GetJob", False, False),
    ("ListJobs", False, False),
    ("CancelJob", False, False),
    ("DeleteJob", False, False),
    ("RunJobs", True, True),
]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    with running_mesh(tmp_path_factory, "fuzz-gateway") as started:
        yield started


@pytest.fixture
def baseline(mesh):
    """Free capacity before the test; after it, everything must be as it was."""
    before = mesh.free_capacity()
    yield before
    settle(mesh, before)


# -- one request of each kind ------------------------------------------------------------------


def submit_one(mesh, request: g.SubmitJobRequest) -> None:
    reply = call(mesh, mesh.stub.SubmitJob, request, SUBMIT, "SubmitJob")
    if reply is not None:
        mesh.job_ids.append(reply.job.job_id)


def watch_one(mesh, job_id: str, after_seq: int) -> None:
    drain(
        mesh,
        mesh.stub.WatchJob(g.WatchJobRequest(job_id=job_id, after_seq=after_seq), timeout=1.0),
        WATCH,
        "WatchJob",
        limit=200,
    )


def job_rpc(mesh, kind: str, job_id: str, after_seq: int, reason: str) -> None:
    if kind == "get":
        call(mesh, mesh.stub.GetJob, g.GetJobRequest(job_id=job_id), JOB, "GetJob")
    elif kind == "cancel":
        call(mesh, mesh.stub.CancelJob, g.CancelJobRequest(job_id=job_id, reason=reason), CANCEL, "CancelJob")
    elif kind == "delete":
        deleted = call(mesh, mesh.stub.DeleteJob, g.DeleteJobRequest(job_id=job_id), JOB, "DeleteJob")
        if deleted is not None and job_id in mesh.job_ids:
            mesh.job_ids.remove(job_id)
    else:
        watch_one(mesh, job_id, after_seq)


def run_jobs(mesh, batches: list[list[g.SubmitJobRequest]]) -> None:
    def requests():
        for i, batch in enumerate(batches):
            yield g.RunJobsRequest(jobs=[g.RunJobsItem(ref=f"{i}.{j}", job=job) for j, job in enumerate(batch)])

    mesh.requests += 1
    try:
        for reply in mesh.stub.RunJobs(requests(), timeout=2.0):
            for update in reply.updates:
                kind = update.WhichOneof("kind")
                if kind == "error":
                    code = ITEM_CODES.get(update.error.code)
                    assert code is not None, f"RunJobs item error code {update.error.code}: {update.error.message}"
                    check_code(code, update.error.message, SUBMIT, "RunJobs item")
                elif kind == "submitted":
                    mesh.job_ids.append(update.job_id)
    except Exception as exc:  # noqa: BLE001 - grpc.RpcError is checked; anything else fails the test
        import grpc

        if not isinstance(exc, grpc.RpcError):
            raise
        check_code(exc.code(), exc.details() or "", RUNJOBS, "RunJobs")


def list_one(mesh, request: g.ListJobsRequest) -> None:
    call(mesh, mesh.stub.ListJobs, request, BAD_INPUT, "ListJobs", timeout=30)


def types_one(mesh, watch: bool) -> None:
    if watch:
        stream = mesh.stub.WatchWorkflowTypes(g.WatchWorkflowTypesRequest(), timeout=5)
        for change in stream:
            if not change.initial:
                break
            if change.type.type.name == "typed":
                break
        stream.cancel()
        mesh.requests += 1
    else:
        call(mesh, mesh.stub.ListWorkflowTypes, g.ListWorkflowTypesRequest(), {}, "ListWorkflowTypes")


def garbage(mesh, method: tuple[str, bool, bool], payload: bytes) -> None:
    name, client_stream, server_stream = method
    raw_call(mesh, mesh.channel, GATEWAY + name, payload, GARBAGE, (client_stream, server_stream))


# -- the quick profile: one test per family of RPCs -------------------------------------------


@settings(max_examples=QUICK, **FUZZ)
@given(request=m.SUBMITS)
def test_fuzz_submit_job(mesh, baseline, request):
    submit_one(mesh, request)


@settings(max_examples=QUICK, **FUZZ)
@given(kind=st.sampled_from(["get", "cancel", "delete", "watch"]), ref=m.JOB_REFS, after_seq=m.UINT64, reason=m.TEXT)
def test_fuzz_job_rpcs(mesh, baseline, kind, ref, after_seq, reason):
    if len(mesh.job_ids) < 5:
        submit_one(mesh, g.SubmitJobRequest(workflow_type="nap", params={}))
    job_rpc(mesh, kind, m.resolve(ref, mesh.job_ids), after_seq, reason)


@settings(max_examples=QUICK, **FUZZ)
@given(request=m.LIST_REQUESTS, watch=st.booleans())
def test_fuzz_listing(mesh, baseline, request, watch):
    list_one(mesh, request)
    types_one(mesh, watch)


@settings(max_examples=QUICK // 2, **FUZZ)
@given(batches=st.lists(st.lists(m.SUBMITS, max_size=5), max_size=3))
def test_fuzz_run_jobs(mesh, baseline, batches):
    run_jobs(mesh, batches)


@settings(max_examples=QUICK, **FUZZ)
@given(method=st.sampled_from(METHODS), payload=st.binary(max_size=300))
def test_fuzz_garbage_bytes(mesh, baseline, method, payload):
    garbage(mesh, method, payload)


# -- the long profile: every kind mixed, ≥ 10,000 requests -----------------------------------

ANY_REQUEST = st.one_of(
    m.SUBMITS.map(lambda r: ("submit", r)),
    st.tuples(st.sampled_from(["get", "cancel", "delete", "watch"]), m.JOB_REFS, m.UINT64, m.TEXT).map(
        lambda t: ("job", t)
    ),
    st.tuples(m.LIST_REQUESTS, st.booleans()).map(lambda t: ("list", t)),
    st.lists(st.lists(m.SUBMITS, max_size=4), max_size=2).map(lambda b: ("runjobs", b)),
    st.tuples(st.sampled_from(METHODS), st.binary(max_size=300)).map(lambda t: ("garbage", t)),
)


@pytest.mark.fuzz_long
@pytest.mark.timeout(1800)
def test_fuzz_gateway_long(mesh, baseline):
    start = mesh.requests

    @settings(max_examples=LONG, **FUZZ)
    @given(request=ANY_REQUEST)
    def one(request):
        kind, body = request
        if kind == "submit":
            submit_one(mesh, body)
        elif kind == "job":
            job_rpc(mesh, body[0], m.resolve(body[1], mesh.job_ids), body[2], body[3])
        elif kind == "list":
            list_one(mesh, body[0])
            types_one(mesh, body[1])
        elif kind == "runjobs":
            run_jobs(mesh, body)
        else:
            garbage(mesh, *body)
        if len(mesh.job_ids) > 400:  # aim at recent jobs; old ones stay in the store
            del mesh.job_ids[:200]

    one()
    assert mesh.requests - start >= 10_000
