"""The OpenAPI 3 document of the HTTP API, built from the proto descriptors it serves.

Schemas follow protobuf's JSON mapping exactly as ``json_format`` writes and reads it (so the
document cannot drift from the messages): lowerCamelCase names, 64-bit integers as strings,
enums by name, Timestamp as RFC 3339, Duration as ``"1.5s"``, Struct as an object, bytes as
base64. Unknown fields are rejected (``additionalProperties: false``).
"""

from __future__ import annotations

from workmesh.services.gateway.http._openapi_parts import _errors, _json, _path_id, _query, _Schemas, _sse
from workmesh.services.gateway.http._shares import share_paths
from workmesh.v1 import common_pb2, gateway_pb2, results_pb2


def _payloads() -> list[str]:
    return [field.name for field in common_pb2.JobEvent.DESCRIPTOR.oneofs_by_name["payload"].fields]


def _job_links() -> dict:
    job_id = {"job_id": "$response.body#/job/jobId"}
    return {
        name: {"operationId": name, "parameters": job_id}
        for name in ("GetJob", "WatchJob", "CancelJob", "ListSeries", "DeleteJob")
    }


def document(*, max_body_bytes: int) -> dict:
    """The OpenAPI 3.0 document of every route the HTTP server answers under /v1 and health."""
    s = _Schemas()
    g = gateway_pb2.DESCRIPTOR.message_types_by_name
    r = results_pb2.DESCRIPTOR.message_types_by_name
    job = _json(s.ref(g["Job"]))
    event = s.ref(common_pb2.DESCRIPTOR.message_types_by_name["JobEvent"])
    list_jobs = g["ListJobsRequest"].fields_by_name
    series_json = {
        "type": "object",
        "properties": {
            "unit": {"type": "string", "enum": ["s", "ms", "us", "ns"]},
            "series": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "jobId": {"type": "string"},
                        "measurement": {"type": "string"},
                        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                        "units": {"type": "object", "additionalProperties": {"type": "string"}},
                        "timestamps": {"type": "array", "items": {"type": "integer"}},
                        "fields": {
                            "type": "object",
                            "additionalProperties": {"type": "array", "items": {"type": "number", "nullable": True}},
                        },
                    },
                },
            },
        },
    }
    health = {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["SERVING", "NOT_SERVING"]},
            "sseStreams": {"type": "integer", "minimum": 0},
            "typeWatchers": {"type": "integer", "minimum": 0},
        },
    }
    body_note = f" The body is at most {max_body_bytes} bytes (413 beyond)."
    paths = {
        "/v1/types": {
            "get": {
                "operationId": "ListWorkflowTypes",
                "summary": "The live workflow types (gRPC ListWorkflowTypes)",
                "responses": {
                    "200": {"description": "the types", "content": _json(s.ref(g["ListWorkflowTypesResponse"]))},
                    **_errors(400),
                },
            }
        },
        "/v1/types:watch": {
            "get": {
                "operationId": "WatchWorkflowTypes",
                "summary": "The types, then every change (SSE; events added, removed, updated)",
                "responses": {
                    "200": _sse(
                        s.ref(g["WorkflowTypeChange"]),
                        ["added", "removed", "updated"],
                        "a WorkflowTypeChange per event",
                        ids=False,
                    ),
                    **_errors(400),
                },
            }
        },
        "/v1/jobs": {
            "post": {
                "operationId": "SubmitJob",
                "summary": "Submit a job (gRPC SubmitJob)." + body_note,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": s.ref(g["SubmitJobRequest"]),
                            "example": {"workflowType": "echo", "params": {"message": {"stringValue": "hi"}}},
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "the job",
                        "content": _json(s.ref(g["SubmitJobResponse"])),
                        "links": _job_links(),
                    },
                    **_errors(400, 404, 413, 429, 503),
                },
            },
            "get": {
                "operationId": "ListJobs",
                "summary": "Jobs, newest first, paged, filtered server-side (gRPC ListJobs)",
                "parameters": [
                    _query("workflow_type", s.field(list_jobs["workflow_type"])),
                    _query("statuses", s.field(list_jobs["statuses"])),
                    _query("page_size", {"type": "integer", "minimum": 0, "maximum": 1000}),
                    _query("page_token", {"type": "string"}),
                    # With authentication on: the tenant's jobs (jobs:manage), every tenant's
                    # (admin), or the caller's own and those shared with it (workmesh.v1.Sharing).
                    _query("tenant_wide", {"type": "boolean"}),
                    _query("all_tenants", {"type": "boolean"}),
                    _query("shared", {"type": "boolean"}),
                    # Filters that narrow what the caller may see, never widen it.
                    _query("owner", {"type": "string", "maxLength": 200}, "only the jobs of this user"),
                    _query(
                        "labels",
                        {
                            "type": "array",
                            "maxItems": 16,
                            "items": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}=.*$"},
                        },
                        "key=value; a job must carry every label given",
                    ),
                    _query("parent_id", {"type": "string", "maxLength": 64}, "only the steps of this job"),
                ],
                "responses": {
                    "200": {"description": "a page", "content": _json(s.ref(g["ListJobsResponse"]))},
                    **_errors(400, 503),
                },
            },
        },
        "/v1/jobs/{job_id}": {
            "parameters": [_path_id()],
            "get": {
                "operationId": "GetJob",
                "summary": "One job (gRPC GetJob)",
                "responses": {"200": {"description": "the job", "content": job}, **_errors(400, 404, 503)},
            },
            "delete": {
                "operationId": "DeleteJob",
                "summary": "Delete a job, its events and its series (gRPC DeleteJob)",
                "responses": {
                    "200": {"description": "deleted", "content": _json(s.ref(g["DeleteJobResponse"]))},
                    **_errors(400, 404, 503),
                },
            },
        },
        "/v1/jobs/{job_id}:cancel": {
            "parameters": [_path_id()],
            "post": {
                "operationId": "CancelJob",
                "summary": "Cancel a job (gRPC CancelJob)." + body_note,
                "requestBody": {
                    "required": False,
                    "content": _json(
                        {"type": "object", "properties": {"reason": {"type": "string"}}, "additionalProperties": False}
                    ),
                },
                "responses": {"200": {"description": "the job", "content": job}, **_errors(400, 404, 413, 503)},
            },
        },
        "/v1/jobs/{job_id}:retry": {
            "parameters": [_path_id()],
            "post": {
                "operationId": "RetryJob",
                "summary": "Run an ended job again as a new attempt of the same job (gRPC RetryJob)." + body_note,
                "requestBody": {
                    "required": False,
                    "content": _json(
                        {
                            "type": "object",
                            "properties": {"idempotencyKey": {"type": "string"}},
                            "additionalProperties": False,
                        }
                    ),
                },
                "responses": {
                    "200": {
                        "description": "the new job",
                        "content": _json(s.ref(g["SubmitJobResponse"])),
                        "links": _job_links(),
                    },
                    **_errors(400, 404, 413, 429, 503),
                },
            },
        },
        "/v1/jobs:estimate": {
            "post": {
                "operationId": "EstimateJob",
                "summary": "Runtime p50/p90 and expected start and finish of a job not submitted "
                "(gRPC EstimateJob; params checked as SubmitJob checks them)." + body_note,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": s.ref(g["EstimateJobRequest"]),
                            "example": {"workflowType": "sleep", "params": {"seconds": {"floatValue": 1.0}}},
                        }
                    },
                },
                "responses": {
                    "200": {"description": "the estimate", "content": _json(s.ref(g["EstimateJobResponse"]))},
                    **_errors(400, 404, 413, 503),
                },
            },
        },
        "/v1/queue": {
            "get": {
                "operationId": "GetQueue",
                "summary": "Queued and running jobs per type and owner, with weights, usage and shares (gRPC GetQueue)",
                "parameters": [_query("workflow_type", {"type": "string"})],
                "responses": {
                    "200": {"description": "the queue", "content": _json(s.ref(g["GetQueueResponse"]))},
                    **_errors(400, 404, 503),
                },
            },
        },
        "/v1/jobs/{job_id}/events": {
            "parameters": [_path_id()],
            "get": {
                "operationId": "WatchJob",
                "summary": "The job's events after Last-Event-ID (or after_seq), then live, "
                "to the terminal one (SSE; id = event seq, event = payload kind)",
                "parameters": [
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"},
                    },
                    _query("after_seq", {"type": "string", "pattern": "^[0-9]{1,19}$"}),
                    _query(
                        "queue_updates",
                        {"type": "boolean"},
                        "also `queue` events (not stored) with the queued job's place, whenever it changes",
                    ),
                    _query(
                        "latest_progress",
                        {"type": "boolean"},
                        "of the progress events ready at once (a replay, a stream behind the job) only the newest",
                    ),
                ],
                "responses": {
                    "200": _sse(event, _payloads(), "a JobEvent per event", ids=True),
                    "204": {"description": "the job had ended at or before the seq given"},
                    **_errors(400, 404, 503),
                },
            },
        },
        "/v1/jobs/{job_id}/series": {
            "parameters": [_path_id()],
            "get": {
                "operationId": "ListSeries",
                "summary": "The job's series (results ListSeries)",
                "responses": {
                    "200": {"description": "the series", "content": _json(s.ref(r["ListSeriesResponse"]))},
                    **_errors(400, 404, 503),
                },
            },
        },
        "/v1/series": {
            "get": {
                "operationId": "ReadSeries",
                "summary": "Series of several jobs (results ReadSeries) as JSON, CSV or Arrow IPC by Accept "
                "or format; NaN/missing values are null in JSON and empty in CSV",
                "parameters": [
                    _query(
                        "job",
                        {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 64},
                        "job ids to compare",
                        required=True,
                    ),
                    _query("measurement", {"type": "string"}),
                    _query("field", {"type": "array", "items": {"type": "string"}}),
                    _query(
                        "tag",
                        {"type": "array", "items": {"type": "string", "pattern": "^[^=]+=.*$"}},
                        "KEY=VALUE; every tag given must match",
                    ),
                    _query("start", {"type": "integer"}, "inclusive, in unit"),
                    _query("end", {"type": "integer"}, "exclusive, in unit"),
                    _query("unit", {"type": "string", "enum": ["s", "ms", "us", "ns"]}, "of timestamps; default s"),
                    _query("window", {"type": "string"}, "downsampling window, e.g. 1d, 6h"),
                    _query("agg", {"type": "string", "enum": ["mean", "min", "max", "last"]}),
                    _query("format", {"type": "string", "enum": ["json", "csv", "arrow"]}, "overrides Accept"),
                ],
                "responses": {
                    "200": {
                        "description": "the series",
                        "content": {
                            "application/json": {"schema": series_json},
                            "text/csv": {"schema": {"type": "string"}},
                            "application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}},
                        },
                    },
                    **_errors(400, 404, 503),
                },
            }
        },
        **share_paths(s, _errors, _path_id, _query, body_note),
        "/healthz": {
            "get": {
                "operationId": "Healthz",
                "summary": "The process is up",
                "responses": {"200": {"description": "up", "content": _json(health)}},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "Readyz",
                "summary": "Serving: started and not stopping",
                "responses": {
                    "200": {"description": "ready", "content": _json(health)},
                    "503": {"description": "not ready", "content": _json(health)},
                },
            }
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "workmesh gateway HTTP API",
            "version": "v1",
            "description": "The gRPC API workmesh.v1.Gateway (and workmesh.v1.Sharing) over HTTP/JSON. Errors are "
            "google.rpc.Status with the code and message the gRPC call gives.",
        },
        "paths": paths,
        "components": {"schemas": s.components},
    }
