"""The gateway's gRPC API over HTTP/JSON, mapped as ``google.api.http`` rules would map it.

| HTTP | gRPC |
|---|---|
| ``GET /v1/types`` | ListWorkflowTypes |
| ``GET /v1/types:watch`` (SSE) | WatchWorkflowTypes |
| ``POST /v1/jobs`` (body: SubmitJobRequest) | SubmitJob |
| ``GET /v1/jobs?workflow_type=&statuses=&page_size=&page_token=`` | ListJobs |
| ``GET /v1/jobs/{job_id}`` | GetJob |
| ``GET /v1/jobs/{job_id}/events`` (SSE; ``Last-Event-ID`` or ``after_seq``; ``queue_updates``) | WatchJob |
| ``POST /v1/jobs/{job_id}:cancel`` (body: ``{"reason": ...}``, optional) | CancelJob |
| ``DELETE /v1/jobs/{job_id}`` | DeleteJob |

Each handler calls the servicer method itself (see ``_calls.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from workmesh.services.core.limits import TERMINAL
from workmesh.services.gateway.http._calls import invalid, server_stream, unary
from workmesh.services.gateway.http._messages import from_query, json_response, read_body, to_dict
from workmesh.services.gateway.http._sse import Event, StreamCounter, serve_sse
from workmesh.v1 import gateway_pb2

JOB_ID = "{job_id:[^/:]+}"
_KINDS = {
    gateway_pb2.WorkflowTypeChange.KIND_ADDED: "added",
    gateway_pb2.WorkflowTypeChange.KIND_REMOVED: "removed",
    gateway_pb2.WorkflowTypeChange.KIND_UPDATED: "updated",
}


async def _mapped(stream: AsyncIterator, convert: Callable) -> AsyncIterator[Event]:
    try:
        async for item in stream:
            yield convert(item)
    finally:
        await stream.aclose()


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

    async def list_types(self, request: web.Request) -> web.Response:
        from_query(request, gateway_pb2.ListWorkflowTypesRequest())
        reply = await unary(self._servicer.ListWorkflowTypes, gateway_pb2.ListWorkflowTypesRequest())
        return json_response(reply)

    async def watch_types(self, request: web.Request) -> web.StreamResponse:
        query = from_query(request, gateway_pb2.WatchWorkflowTypesRequest())
        stream = server_stream(self._servicer.WatchWorkflowTypes, query)
        events = _mapped(stream, lambda change: Event(_KINDS.get(change.kind, "updated"), to_dict(change)))
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

    async def job_events(self, request: web.Request) -> web.StreamResponse:
        job_id = request.match_info["job_id"]
        after = after_seq(request)
        query = from_query(request, gateway_pb2.WatchJobRequest(), skip=("after_seq",))
        # Errors (unknown job) as a status before the stream starts; a job that ended at or
        # before `after` answers 204, which tells an EventSource not to reconnect.
        job = await unary(self._servicer.GetJob, gateway_pb2.GetJobRequest(job_id=job_id))
        if job.status in TERMINAL and after >= job.last_seq:
            return web.Response(status=204)
        watch = gateway_pb2.WatchJobRequest(job_id=job_id, after_seq=after, queue_updates=query.queue_updates)
        stream = server_stream(self._servicer.WatchJob, watch)
        events = _mapped(stream, lambda e: Event(e.WhichOneof("payload") or "event", to_dict(e), str(e.seq)))
        return await serve_sse(request, events, heartbeat=self._heartbeat, counter=self._streams)
