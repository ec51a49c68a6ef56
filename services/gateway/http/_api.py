"""The gateway's gRPC API over HTTP/JSON, mapped as ``google.api.http`` rules would map it.

| HTTP | gRPC |
|---|---|
| ``GET /v1/types`` | ListWorkflowTypes |
| ``GET /v1/types:watch`` (SSE) | WatchWorkflowTypes |
| ``POST /v1/jobs`` (body: SubmitJobRequest) | SubmitJob |
| ``GET /v1/jobs?workflow_type=&statuses=&owner=&labels=&parent_id=&page_size=&page_token=`` | ListJobs |
| ``GET /v1/jobs/{job_id}`` | GetJob |
| ``GET /v1/jobs/{job_id}/events`` (SSE; Last-Event-ID, after_seq, queue_updates, latest_progress) | WatchJob |
| ``POST /v1/jobs/{job_id}:cancel`` (body: ``{"reason": ...}``, optional) | CancelJob |
| ``DELETE /v1/jobs/{job_id}`` | DeleteJob |
| ``POST /v1/jobs/{job_id}:retry`` (body: ``{"idempotencyKey": ...}``, optional) | RetryJob |
| ``POST /v1/jobs:estimate`` (body: EstimateJobRequest) | EstimateJob |
| ``GET /v1/queue?workflow_type=`` | GetQueue |

Each handler calls the servicer method itself (see ``_calls.py``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from aiohttp import web

from workmesh.services.core.limits import TERMINAL
from workmesh.services.gateway.http._calls import invalid, server_stream, unary
from workmesh.services.gateway.http._messages import from_query, json_response, read_body, to_dict
from workmesh.services.gateway.http._sse import Event, StreamCounter, serve_sse
from workmesh.v1 import common_pb2, gateway_pb2

JOB_ID = "{job_id:[^/:]+}"
_KINDS = {
    gateway_pb2.WorkflowTypeChange.KIND_ADDED: "added",
    gateway_pb2.WorkflowTypeChange.KIND_REMOVED: "removed",
    gateway_pb2.WorkflowTypeChange.KIND_UPDATED: "updated",
}


async def _mapped(stream: AsyncGenerator, convert: Callable) -> AsyncGenerator[bytes, None]:
    try:
        async for item in stream:
            yield convert(item)
    finally:
        await stream.aclose()


class EventCache:
    """Stored job events encoded for SSE once, however many streams send them.

    Stored events never change and job ids are never reused, so ``(job_id, seq)`` names the
    encoding for good; the oldest entries go first beyond `size`. Unstored ``queue`` events
    are encoded every time.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._items: dict[tuple[str, int], bytes] = {}

    def encode(self, job_id: str, event: common_pb2.JobEvent) -> bytes:
        kind = event.WhichOneof("payload") or "event"
        if kind == "queue":
            return Event(kind, to_dict(event), str(event.seq)).encode()
        key = (job_id, event.seq)
        data = self._items.get(key)
        if data is None:
            data = self._items[key] = Event(kind, to_dict(event), str(event.seq)).encode()
            if len(self._items) > self._size:
                del self._items[next(iter(self._items))]
        return data

    def __len__(self) -> int:
        return len(self._items)


def after_seq(request: web.Request) -> int:
    """Where a job's event stream resumes: ``Last-Event-ID`` (the SSE reconnect) or ``after_seq``."""
    header = request.headers.get("Last-Event-ID")
    name, raw = ("Last-Event-ID", header) if header is not None else ("after_seq", request.query.get("after_seq"))
    if raw is None or raw == "":
        return 0
    if not raw.isascii() or not raw.isdigit() or int(raw) >= 1 << 64:
        raise invalid(name, f"must be an event seq (a non-negative integer), got {raw[:40]!r}")
    return int(raw)


class GatewayRoutes:
    """The job and type routes over one :class:`GatewayServicer`.

    Args:
        servicer: the gateway servicer the gRPC server serves too.
        streams: counts the open SSE streams.
        heartbeat: seconds between SSE keep-alive comments on a quiet stream.
    """

    def __init__(self, servicer, streams: StreamCounter, *, heartbeat: float = 15.0) -> None:
        self._servicer = servicer
        self._streams = streams
        self._heartbeat = heartbeat
        self._encoded = EventCache()

    def add_to(self, app: web.Application) -> None:
        router = app.router
        router.add_get("/v1/types", self.list_types)
        router.add_get("/v1/types:watch", self.watch_types)
        router.add_post("/v1/jobs", self.submit_job)
        router.add_get("/v1/jobs", self.list_jobs)
        router.add_get(f"/v1/jobs/{JOB_ID}", self.get_job)
        router.add_delete(f"/v1/jobs/{JOB_ID}", self.delete_job)
        router.add_get(f"/v1/jobs/{JOB_ID}/events", self.job_events)
        router.add_post(f"/v1/jobs/{JOB_ID}:cancel", self.cancel_job)
        router.add_post(f"/v1/jobs/{JOB_ID}:retry", self.retry_job)
        router.add_post("/v1/jobs:estimate", self.estimate_job)
        router.add_get("/v1/queue", self.get_queue)

    async def list_types(self, request: web.Request) -> web.Response:
        from_query(request, gateway_pb2.ListWorkflowTypesRequest())
        reply = await unary(self._servicer.ListWorkflowTypes, gateway_pb2.ListWorkflowTypesRequest())
        return json_response(reply)

    async def watch_types(self, request: web.Request) -> web.StreamResponse:
        query = from_query(request, gateway_pb2.WatchWorkflowTypesRequest())
        stream = server_stream(self._servicer.WatchWorkflowTypes, query)
        events = _mapped(stream, lambda change: Event(_KINDS.get(change.kind, "updated"), to_dict(change)).encode())
        return await serve_sse(request, events, heartbeat=self._heartbeat, counter=self._streams)

    async def submit_job(self, request: web.Request) -> web.Response:
        body = await read_body(request, gateway_pb2.SubmitJobRequest())
        reply = await unary(self._servicer.SubmitJob, body)
        return json_response(reply)

    async def list_jobs(self, request: web.Request) -> web.Response:
        query = from_query(request, gateway_pb2.ListJobsRequest())
        return json_response(await unary(self._servicer.ListJobs, query))

    async def get_job(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        return json_response(await unary(self._servicer.GetJob, gateway_pb2.GetJobRequest(job_id=job_id)))

    async def delete_job(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        return json_response(await unary(self._servicer.DeleteJob, gateway_pb2.DeleteJobRequest(job_id=job_id)))

    async def cancel_job(self, request: web.Request) -> web.Response:
        body = await read_body(request, gateway_pb2.CancelJobRequest())
        # The path names the job (as google.api.http's `body: "*"` with a path variable).
        body.job_id = request.match_info["job_id"]
        return json_response(await unary(self._servicer.CancelJob, body))

    async def retry_job(self, request: web.Request) -> web.Response:
        body = await read_body(request, gateway_pb2.RetryJobRequest())
        body.job_id = request.match_info["job_id"]
        return json_response(await unary(self._servicer.RetryJob, body))

    async def estimate_job(self, request: web.Request) -> web.Response:
        body = await read_body(request, gateway_pb2.EstimateJobRequest())
        return json_response(await unary(self._servicer.EstimateJob, body))

    async def get_queue(self, request: web.Request) -> web.Response:
        query = from_query(request, gateway_pb2.GetQueueRequest())
        return json_response(await unary(self._servicer.GetQueue, query))

    async def job_events(self, request: web.Request) -> web.StreamResponse:
        job_id = request.match_info["job_id"]
        after = after_seq(request)
        query = from_query(request, gateway_pb2.WatchJobRequest(), skip=("after_seq",))
        # Errors (unknown job) as a status before the stream starts; a job that ended at or
        # before `after` answers 204, which tells an EventSource not to reconnect.
        job = await unary(self._servicer.GetJob, gateway_pb2.GetJobRequest(job_id=job_id))
        if job.status in TERMINAL and after >= job.last_seq:
            return web.Response(status=204)
        watch = gateway_pb2.WatchJobRequest(
            job_id=job_id, after_seq=after, queue_updates=query.queue_updates, latest_progress=query.latest_progress
        )
        # The events ready at once (a replay, or a worker's batch of progress) go out in one
        # write, each encoded once for all the streams of the job.
        stream = server_stream(self._servicer.watch_batches, watch)
        encode = self._encoded.encode
        chunks = _mapped(stream, lambda batch: b"".join([encode(job_id, e) for e in batch]))
        return await serve_sse(request, chunks, heartbeat=self._heartbeat, counter=self._streams)
