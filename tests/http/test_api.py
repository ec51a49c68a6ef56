"""The HTTP/JSON API against a live dev mesh: the gRPC API's answers, codes and messages."""

from __future__ import annotations

import io
import urllib.parse

import grpc
import pyarrow as pa
import pytest
from google.protobuf import json_format

from tests.gateway.test_bad_input import CASES
from tests.support import eventually, run
from workmesh.services.clients import ResultsClient
from workmesh.v1 import common_pb2
from workmesh.v1 import gateway_pb2 as g

pytestmark = pytest.mark.e2e
TERMINAL = {"JOB_STATUS_SUCCEEDED", "JOB_STATUS_FAILED", "JOB_STATUS_CANCELLED", "JOB_STATUS_TIMED_OUT"}


def submit(http, workflow_type: str, **params) -> dict:
    values = {
        k: (
            {"floatValue": v}
            if isinstance(v, float)
            else {"intValue": str(v)}
            if isinstance(v, int)
            else {"stringValue": v}
        )
        for k, v in params.items()
    }
    reply = http.post("/v1/jobs", {"workflowType": workflow_type, "params": values})
    assert reply.status == 200, reply.body
    return reply.json()["job"]


def _probed(body: dict) -> dict:
    """`body` if the registry's check of every instance's registration has passed a probe: the
    check of each registration for its type, passing, with the check's own output (a check starts
    out passing with no output until its first probe, which under load may take a while)."""
    for info in body["types"]:
        for inst in info["instances"]:
            service_id = f"workmesh-wf-{info['type']['name']}-{inst['instanceId']}"
            mine = [c for c in inst["checks"] if c["serviceId"] == service_id]
            assert mine and all(c["status"] == "passing" and "success" in c["output"] for c in mine), inst
    return body


def test_types_are_the_grpc_types_with_instances(http, stub):
    body = eventually(lambda: _probed(http.get("/v1/types").json()), timeout=30, interval=0.2)
    expected = json_format.MessageToDict(
        stub.ListWorkflowTypes(g.ListWorkflowTypesRequest()), always_print_fields_with_no_presence=True
    )
    names = [t["type"]["name"] for t in body["types"]]
    assert names == [t["type"]["name"] for t in expected["types"]]
    assert {"heat-demand", "echo", "sleep", "fail"} <= set(names)
    for info in body["types"]:
        assert info["healthyInstances"] >= 1 and info["instances"], info
        assert all(i["address"].startswith("127.0.0.1:") and i["healthy"] for i in info["instances"])
    heat = next(t for t in body["types"] if t["type"]["name"] == "heat-demand")
    buildings = next(p for p in heat["type"]["params"] if p["name"] == "buildings")
    assert buildings["type"] == "PARAM_TYPE_INT" and "min" in buildings


def test_types_watch_starts_with_the_current_types(http):
    seen = []
    for event in http.events("/v1/types:watch"):
        assert event.event == "added" and event.data["initial"] is True
        seen.append(event.data["type"]["type"]["name"])
        if len(seen) == 6:
            break
    assert set(seen) == {"heat-demand", "echo", "sleep", "fail", "district-design", "heat-kpi"}


def test_submit_follow_and_resume_with_last_event_id(http, stub):
    job = submit(http, "sleep", seconds=0.3, steps=3)
    events = list(http.events(f"/v1/jobs/{job['jobId']}/events"))
    seqs = [int(e.id) for e in events]
    assert seqs == list(range(1, len(seqs) + 1))
    assert events[-1].event == "status" and events[-1].data["status"]["status"] == "JOB_STATUS_SUCCEEDED"
    assert [e.event for e in events].count("progress") == 3
    grpc_events = list(stub.WatchJob(g.WatchJobRequest(job_id=job["jobId"]), timeout=10))
    assert [json_format.MessageToDict(e, always_print_fields_with_no_presence=True) for e in grpc_events] == [
        e.data for e in events
    ]
    resumed = list(http.events(f"/v1/jobs/{job['jobId']}/events", headers={"Last-Event-ID": "2"}))
    assert [e.id for e in resumed] == [e.id for e in events[2:]]
    assert [e.id for e in http.events(f"/v1/jobs/{job['jobId']}/events?after_seq=4")] == [e.id for e in events[4:]]
    # A replay with latest_progress: the newest progress only, every other event (HTTP and gRPC).
    latest = list(http.events(f"/v1/jobs/{job['jobId']}/events?latest_progress=true"))
    kept = [e for e in events if e.event != "progress" or e is [p for p in events if p.event == "progress"][-1]]
    assert [e.id for e in latest] == [e.id for e in kept]
    grpc_latest = stub.WatchJob(g.WatchJobRequest(job_id=job["jobId"], latest_progress=True), timeout=10)
    assert [str(e.seq) for e in grpc_latest] == [e.id for e in kept]
    # After the end: 204, which tells an EventSource not to reconnect.
    assert http.get(f"/v1/jobs/{job['jobId']}/events", headers={"Last-Event-ID": events[-1].id}).status == 204
    assert http.get(f"/v1/jobs/{job['jobId']}").json()["status"] == "JOB_STATUS_SUCCEEDED"


def test_list_cancel_delete(http, stub):
    job = submit(http, "sleep", seconds=120.0, steps=120)
    job_id = job["jobId"]
    eventually(lambda: http.get(f"/v1/jobs/{job_id}").json()["status"] == "JOB_STATUS_RUNNING", timeout=20)
    running = http.get("/v1/jobs?statuses=JOB_STATUS_RUNNING&workflow_type=sleep").json()["jobs"]
    assert job_id in [j["jobId"] for j in running]
    reply = http.post(f"/v1/jobs/{job_id}:cancel", {"reason": "from the HTTP test"})
    assert reply.status == 200, reply.body
    done = eventually(lambda: http.get(f"/v1/jobs/{job_id}").json(), timeout=20)
    eventually(lambda: http.get(f"/v1/jobs/{job_id}").json()["status"] == "JOB_STATUS_CANCELLED", timeout=20)
    assert done["jobId"] == job_id
    again = http.post(f"/v1/jobs/{job_id}:cancel")
    with pytest.raises(grpc.RpcError) as rpc:
        stub.CancelJob(g.CancelJobRequest(job_id=job_id))
    assert again.status == 400 and again.json() == {
        "code": rpc.value.code().value[0],
        "message": rpc.value.details(),
        "details": [],
    }
    # Paging: page_size 1 and its token.
    first = http.get("/v1/jobs?page_size=1").json()
    assert len(first["jobs"]) == 1 and first["nextPageToken"]
    second = http.get("/v1/jobs?page_size=1&page_token=" + urllib.parse.quote(first["nextPageToken"])).json()
    assert second["jobs"][0]["jobId"] != first["jobs"][0]["jobId"]
    assert http.call("DELETE", f"/v1/jobs/{job_id}").json() == {}
    gone = http.get(f"/v1/jobs/{job_id}")
    with pytest.raises(grpc.RpcError) as rpc:
        stub.GetJob(g.GetJobRequest(job_id=job_id))
    assert gone.status == 404 and gone.json()["message"] == rpc.value.details()


def _http_of(method: str, request) -> tuple[str, str, dict | None] | None:
    """The HTTP request for a gRPC one (None: not expressible, e.g. an empty path segment)."""
    body = json_format.MessageToDict(request)
    job_id = getattr(request, "job_id", None)
    if job_id == "":
        return None
    if method == "SubmitJob":
        return "POST", "/v1/jobs", body
    if method == "GetJob":
        return "GET", f"/v1/jobs/{job_id}", None
    if method == "CancelJob":
        return "POST", f"/v1/jobs/{job_id}:cancel", {}
    if method == "DeleteJob":
        return "DELETE", f"/v1/jobs/{job_id}", None
    query = [(f.name, str(v)) for f, value in request.ListFields() for v in (value if f.is_repeated else [value])]
    return "GET", "/v1/jobs?" + urllib.parse.urlencode(query), None


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_bad_requests_get_the_grpc_code_and_message(http, stub, index):
    method, request, code, _ = CASES[index]
    mapped = _http_of(method, request)
    if mapped is None:
        pytest.skip("an empty job_id has no HTTP path (the route does not match: 404 unknown route)")
    verb, path, body = mapped
    with pytest.raises(grpc.RpcError) as rpc:
        getattr(stub, method)(request, timeout=10)
    assert rpc.value.code() == code
    reply = http.call(verb, path, body)
    assert reply.json() == {"code": code.value[0], "message": rpc.value.details(), "details": []}
    assert reply.status == {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.NOT_FOUND: 404}[code]


BAD = [
    ("POST", "/v1/jobs", b"{not json", 400, 3, "body: malformed JSON"),
    ("POST", "/v1/jobs", b"[1, 2]", 400, 3, "body: must be a JSON object"),
    ("POST", "/v1/jobs", b'{"workflowType": "echo", "colour": 1}', 400, 3, 'no field named "colour"'),
    ("POST", "/v1/jobs", b'{"workflowType": 5}', 400, 3, "workflowType"),
    ("POST", "/v1/jobs", b'{"workflowType": "echo", "timeout": "soon"}', 400, 3, "timeout"),
    ("POST", "/v1/jobs", b'{"workflowType": "echo", "params": {"message": {"intValue": "x"}}}', 400, 3, "intValue"),
    ("POST", "/v1/jobs", b'{"workflowType": "echo", "params": []}', 400, 3, "params"),
    (
        "POST",
        "/v1/jobs",
        b'{"workflowType": "echo", "notify": {"webhooks": ["ftp://x/"]}}',
        400,
        3,
        "notify.webhooks[0]: must be an http:// or https:// URL",
    ),
    (
        "POST",
        "/v1/jobs",
        b'{"workflowType": "echo", "notify": {"emails": ["nobody"]}}',
        400,
        3,
        "notify.emails[0]: must be an e-mail address",
    ),
    ("POST", "/v1/jobs", b'{"workflowType": "echo", "notify": {"webhooks": "http://x/"}}', 400, 3, "webhooks"),
    # The dev mesh has no WORKMESH_NOTIFY_SECRET: a well-formed webhook cannot be signed.
    (
        "POST",
        "/v1/jobs",
        b'{"workflowType": "echo", "notify": {"webhooks": ["http://x/"]}}',
        400,
        9,
        "notify.webhooks: this gateway has no WORKMESH_NOTIFY_SECRET",
    ),
    ("POST", "/v1/jobs", b'{"workflowType": "' + b"x" * (2 << 20) + b'"}', 413, 8, "larger than the limit of 1048576"),
    ("GET", "/v1/jobs?page_size=ten", 400, 3, "page_size"),
    ("GET", "/v1/jobs?colour=red", 400, 3, "colour: unknown query parameter"),
    ("GET", "/v1/jobs?statuses=JOB_STATUS_SLEEPY", 400, 3, "statuses"),
    ("GET", "/v1/nothing", 404, 5, "no such route: GET /v1/nothing"),
    ("PUT", "/v1/jobs", 405, 12, "method not allowed"),
    ("PATCH", "/v1/jobs/abc", 405, 12, "method not allowed"),
    ("GET", "/v1/jobs/abc:explode", 404, 5, "no such route"),
    ("GET", "/v1/series", 400, 3, "job: at least one job id"),
    ("GET", "/v1/series?job=a&agg=median", 400, 3, "agg: must be one of"),
    ("GET", "/v1/series?job=a&window=soon", 400, 3, "window: must be a duration"),
    ("GET", "/v1/series?job=a&format=xml", 400, 3, "format: must be one of"),
    ("GET", "/v1/series?job=no-such-job", 404, 5, "job_id: no job 'no-such-job'"),
]


@pytest.mark.parametrize("case", BAD, ids=[f"{c[0]} {c[1][:40]}" for c in BAD])
def test_malformed_http_input_is_4xx_with_a_status(http, case):
    if len(case) == 6:
        method, path, body, status, code, words = case
    else:
        (method, path, status, code, words), body = case, None
    before = len(http.get("/v1/jobs?page_size=1000").json()["jobs"])
    reply = http.call(method, path, body)
    assert reply.status == status, reply.body[:300]
    assert reply.json()["code"] == code and words in reply.json()["message"], reply.json()
    if status == 405:
        assert "GET" in reply.headers["allow"] or "POST" in reply.headers["allow"]
    assert len(http.get("/v1/jobs?page_size=1000").json()["jobs"]) == before  # nothing stored


def test_bad_last_event_id(http):
    job = submit(http, "echo", message="x")
    for bad in ("x", "-1", "1.5", "99999999999999999999999"):
        reply = http.get(f"/v1/jobs/{job['jobId']}/events", headers={"Last-Event-ID": bad})
        assert reply.status == 400 and reply.json()["message"].startswith("Last-Event-ID: must be an event seq")
    assert http.get("/v1/jobs/no-such-job/events").json()["message"] == "job_id: no job 'no-such-job'"


def test_series_as_json_csv_and_arrow(http, mesh):
    job = submit(http, "heat-demand", buildings=3)
    events = list(http.events(f"/v1/jobs/{job['jobId']}/events"))
    assert events[-1].data["status"]["status"] == "JOB_STATUS_SUCCEEDED"
    listed = http.get(f"/v1/jobs/{job['jobId']}/series").json()["series"]
    assert {s["key"]["measurement"] for s in listed} == {"heat_demand", "district", "outdoor"}
    query = f"/v1/series?job={job['jobId']}&measurement=district&field=Q"
    body = http.get(query).json()
    assert body["unit"] == "s" and len(body["series"]) == 1
    series = body["series"][0]
    assert series["jobId"] == job["jobId"] and len(series["timestamps"]) in (8760, 8784)
    assert series["units"] == {"Q": "kW"}

    async def direct():
        async with ResultsClient(mesh.results_address) as client:
            return await client.read(job["jobId"], measurement="district", fields=["Q"], time_unit="s")

    expected = run(direct())[0]
    assert series["timestamps"] == expected.timestamps.tolist()
    assert series["fields"]["Q"] == expected.fields["Q"].tolist()

    daily = http.get(query + "&window=1d&agg=mean").json()["series"][0]
    assert len(daily["timestamps"]) in (365, 366)
    csv_reply = http.get(query, headers={"Accept": "text/csv"})
    assert csv_reply.headers["content-type"].startswith("text/csv")
    lines = csv_reply.body.decode().splitlines()
    assert lines[0] == f"time,{job['jobId']}/district/Q" and len(lines) == len(series["timestamps"]) + 1
    assert float(lines[1].split(",")[1]) == series["fields"]["Q"][0]
    arrow = http.get(query, headers={"Accept": "application/vnd.apache.arrow.stream"})
    table = pa.ipc.open_stream(io.BytesIO(arrow.body)).read_all()
    assert table.column("value").to_pylist() == series["fields"]["Q"]
    assert table.column("time").to_pylist() == series["timestamps"]


def test_openapi_is_served_and_health(http):
    doc = http.get("/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.") and "/v1/jobs/{job_id}/events" in doc["paths"]
    assert http.get("/healthz").json()["status"] == "SERVING"
    assert http.get("/readyz").json() == {"status": "SERVING"}


def test_job_event_kinds_are_the_proto_oneof():
    names = [f.name for f in common_pb2.JobEvent.DESCRIPTOR.oneofs_by_name["payload"].fields]
    assert names == ["status", "progress", "log", "result", "error", "notification", "queue", "step"]


def test_event_cache_encodes_each_stored_event_once_and_stays_bounded():
    from workmesh.services.gateway.http._api import EventCache

    cache = EventCache(size=2)
    first = common_pb2.JobEvent(seq=1, progress=common_pb2.Progress(fraction=0.5))
    data = cache.encode("j1", first)
    assert data.startswith(b"id: 1\nevent: progress\ndata: {") and data.endswith(b"\n\n")
    assert cache.encode("j1", first) is data  # the same bytes for every stream of the job
    assert cache.encode("j2", first) is not data  # another job's seq 1
    cache.encode("j1", common_pb2.JobEvent(seq=2))
    assert len(cache) == 2  # the oldest went first
    place = common_pb2.JobEvent(seq=2, queue=common_pb2.QueuePlace(position=3, queued=4))
    assert b"event: queue\n" in cache.encode("j1", place)  # not stored: not cached under seq 2
    assert b"event: event\n" in cache.encode("j1", common_pb2.JobEvent(seq=2))


def test_estimate_and_queue_answer_as_their_grpc_calls(http, stub):
    body = {"workflowType": "sleep", "params": {"seconds": {"floatValue": 0.1}}}
    estimate = http.post("/v1/jobs:estimate", body)
    assert estimate.status == 200
    grpc_estimate = stub.EstimateJob(json_format.ParseDict(body, g.EstimateJobRequest()))
    assert estimate.json()["workflowType"] == "sleep" and estimate.json()["basis"] == grpc_estimate.basis
    bad = {"workflowType": "sleep", "params": {"seconds": {"stringValue": "soon"}}}
    reply = http.post("/v1/jobs:estimate", bad)
    with pytest.raises(grpc.RpcError) as err:
        stub.EstimateJob(json_format.ParseDict(bad, g.EstimateJobRequest()))
    assert reply.status == 400 and reply.json()["message"] == err.value.details()
    assert http.post("/v1/jobs:estimate", {"workflowType": "nope"}).status == 404
    queue = http.get("/v1/queue")
    assert queue.status == 200 and queue.json()["policy"] == stub.GetQueue(g.GetQueueRequest()).policy
    assert http.get("/v1/queue?workflow_type=sleep").status == 200
    unknown = http.get("/v1/queue?workflow_type=nope")
    with pytest.raises(grpc.RpcError) as err:
        stub.GetQueue(g.GetQueueRequest(workflow_type="nope"))
    assert unknown.status == 404 and unknown.json()["message"] == err.value.details()


def test_retry_runs_an_ended_job_again_as_a_new_attempt(http, stub):
    job = submit(http, "sleep", seconds=300.0, steps=300)
    try:
        early = http.post(f"/v1/jobs/{job['jobId']}:retry")
        assert early.status == 400 and early.json()["code"] == grpc.StatusCode.FAILED_PRECONDITION.value[0]
        assert "only a job that has ended can be retried" in early.json()["message"]
    finally:
        http.post(f"/v1/jobs/{job['jobId']}:cancel")
    eventually(lambda: http.get(f"/v1/jobs/{job['jobId']}").json()["status"] == "JOB_STATUS_CANCELLED", timeout=20)
    ended = http.get(f"/v1/jobs/{job['jobId']}").json()
    again = http.post(f"/v1/jobs/{job['jobId']}:retry", {"idempotencyKey": "retry-once"}).json()
    try:
        retried = again["job"]
        assert retried["jobId"] == job["jobId"] and not again.get("existing")
        assert retried["status"] == "JOB_STATUS_QUEUED" and retried["params"] == job["params"]
        assert int(retried["lastSeq"]) == int(ended["lastSeq"]) + 1, "its events number on"
        # The same key again: the job as it is, not a second retry (gRPC alike).
        grpc_again = stub.RetryJob(g.RetryJobRequest(job_id=job["jobId"], idempotency_key="retry-once"))
        assert grpc_again.existing and grpc_again.job.job_id == job["jobId"]
        assert grpc_again.job.last_seq >= int(retried["lastSeq"])
    finally:
        http.post(f"/v1/jobs/{job['jobId']}:cancel")
    assert http.post("/v1/jobs/nope:retry").status == 404
    assert http.post(f"/v1/jobs/{job['jobId']}:retry", {"reason": "x"}).status == 400  # unknown field
