"""``workmesh.v1.Sharing`` over HTTP/JSON, mapped as ``google.api.http`` rules would map it.

| HTTP | gRPC |
|---|---|
| ``POST /v1/shares`` (body: ShareJobRequest: a job or a label) | ShareJob |
| ``POST /v1/jobs/{job_id}:share`` (body: ShareJobRequest without jobId) | ShareJob |
| ``GET /v1/shares?job_id=`` | ListShares |
| ``DELETE /v1/shares/{share_id}`` | Unshare |

Each handler calls the :class:`~workmesh.services.gateway._sharing.SharingServicer` the gRPC
server serves, so the rules, the validation and the errors are the gRPC call's.
"""

from __future__ import annotations

import grpc
from aiohttp import web

from workmesh.services.gateway.http._calls import CallError, unary
from workmesh.services.gateway.http._messages import from_query, json_response, read_body
from workmesh.v1 import sharing_pb2

__all__ = ["ShareRoutes", "share_paths"]

SHARE_ID = "{share_id:[^/:]+}"


class ShareRoutes:
    """The sharing routes over one ``SharingServicer`` (None: a job store without shares)."""

    def __init__(self, sharing) -> None:
        self._sharing = sharing

    def add_to(self, app: web.Application, job_id: str) -> None:
        router = app.router
        router.add_post("/v1/shares", self.share)
        router.add_post(f"/v1/jobs/{job_id}:share", self.share_job)
        router.add_get("/v1/shares", self.list_shares)
        router.add_delete(f"/v1/shares/{SHARE_ID}", self.unshare)

    def _servicer(self):
        if self._sharing is None:
            raise CallError(grpc.StatusCode.UNIMPLEMENTED, "sharing: this gateway's job store keeps no shares")
        return self._sharing

    async def share(self, request: web.Request) -> web.Response:
        body = await read_body(request, sharing_pb2.ShareJobRequest())
        return json_response(await unary(self._servicer().ShareJob, body))

    async def share_job(self, request: web.Request) -> web.Response:
        body = await read_body(request, sharing_pb2.ShareJobRequest())
        body.job_id = request.match_info["job_id"]  # the path names the job (body: "*")
        return json_response(await unary(self._servicer().ShareJob, body))

    async def list_shares(self, request: web.Request) -> web.Response:
        query = from_query(request, sharing_pb2.ListSharesRequest())
        return json_response(await unary(self._servicer().ListShares, query))

    async def unshare(self, request: web.Request) -> web.Response:
        share_id = request.match_info["share_id"]
        return json_response(await unary(self._servicer().Unshare, sharing_pb2.UnshareRequest(share_id=share_id)))


def share_paths(schemas, errors, path_id, query, body_note: str) -> dict:
    """The OpenAPI path items of the sharing routes (built with ``_openapi``'s helpers)."""
    m = sharing_pb2.DESCRIPTOR.message_types_by_name
    share = {"description": "the share", "content": {"application/json": {"schema": schemas.ref(m["Share"])}}}
    request = schemas.ref(m["ShareJobRequest"])
    fields = [f for f in m["ShareJobRequest"].fields if f.name != "job_id"]
    without_job = {
        "type": "object",
        "properties": {f.json_name: schemas.field(f) for f in fields},
        "additionalProperties": False,
    }
    share_id = {
        "name": "share_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[^/:]+$", "minLength": 1},
    }
    return {
        "/v1/shares": {
            "post": {
                "operationId": "ShareJob",
                "summary": "Share a job, or the caller's jobs with a label value (key=value), with a subject "
                "or a group, to read or manage (gRPC Sharing.ShareJob)." + body_note,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": request,
                            "example": {"label": "project=harbour-north", "grantee": "bob"},
                        }
                    },
                },
                "responses": {"200": share, **errors(400, 403, 404, 413, 503)},
            },
            "get": {
                "operationId": "ListShares",
                "summary": "The shares the caller gave, those of its jobs and those given to it "
                "(gRPC Sharing.ListShares)",
                "parameters": [query("job_id", {"type": "string"}, "only the shares of this job")],
                "responses": {
                    "200": {
                        "description": "the shares, oldest first",
                        "content": {"application/json": {"schema": schemas.ref(m["ListSharesResponse"])}},
                    },
                    **errors(400, 403, 503),
                },
            },
        },
        "/v1/jobs/{job_id}:share": {
            "parameters": [path_id()],
            "post": {
                "operationId": "ShareJobById",
                "summary": "Share this job (gRPC Sharing.ShareJob with the path's job id)." + body_note,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": without_job, "example": {"grantee": "bob"}}},
                },
                "responses": {"200": share, **errors(400, 403, 404, 413, 503)},
            },
        },
        "/v1/shares/{share_id}": {
            "parameters": [share_id],
            "delete": {
                "operationId": "Unshare",
                "summary": "Take a share back, effective at once (gRPC Sharing.Unshare)",
                "responses": {"200": share, **errors(400, 403, 404, 503)},
            },
        },
    }
