"""The step tree of a workflow job (issue 13) for ``workmesh job`` and ``workmesh demo``.

A job's steps are its child jobs, listed with ``ListJobs(parent_id=...)`` (one call per job in
the tree, pages aside: each child's status, type and times come with the listing), and,
recursively, their own steps; no job's events are read. Steps are shown in the order they were
first started; a step that ran again (it failed, and the job was retried) shows its latest child
job.
"""

from __future__ import annotations

from typing import Any

import grpc
from rich.console import Console
from rich.tree import Tree

from workmesh.services.core.limits import STATUS_NAMES
from workmesh.v1 import gateway_pb2

MAX_DEPTH = 16  # deeper than any gateway lets steps nest (WORKMESH_MAX_STEP_DEPTH): a loop guard
PAGE_SIZE = 1000  # the gateway's largest ListJobs page
# How to ask for a job's children, widest first: an admin sees every tenant's jobs, an operator
# (jobs:manage) the tenant's, anybody else its own and those shared with it. A caller who may
# not ask the wider way gets PERMISSION_DENIED and the next one is tried (authentication off:
# the first one lists everything).
_SCOPES = ("all_tenants", "tenant_wide", "shared")


class _Lister:
    """Lists child jobs, remembering which scope the caller may use."""

    def __init__(self, stub) -> None:
        self._stub = stub
        self._scope = 0

    def children(self, parent_id: str) -> list[gateway_pb2.Job]:
        """The child jobs of `parent_id`, oldest first."""
        while True:
            try:
                return self._all(parent_id, _SCOPES[self._scope])
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.PERMISSION_DENIED or self._scope == len(_SCOPES) - 1:
                    raise
                self._scope += 1

    def _all(self, parent_id: str, scope: str) -> list[gateway_pb2.Job]:
        jobs: list[gateway_pb2.Job] = []
        token = ""
        while True:
            request = gateway_pb2.ListJobsRequest(parent_id=parent_id, page_size=PAGE_SIZE, page_token=token)
            setattr(request, scope, True)
            reply = self._stub.ListJobs(request, timeout=30)
            jobs.extend(reply.jobs)
            token = reply.next_page_token
            if not token:
                return jobs[::-1]  # listed newest first


def step_children(stub, job: gateway_pb2.Job, lister: _Lister | None = None) -> list[gateway_pb2.Job]:
    """The latest child job of each of `job`'s steps, in the order the steps first started."""
    latest: dict[str, gateway_pb2.Job] = {}
    for child in (lister or _Lister(stub)).children(job.job_id):
        latest[child.step_name] = child  # a step keeps its first place, and shows its latest child
    return list(latest.values())


def _time(job: gateway_pb2.Job, name: str) -> str:
    return getattr(job, name).ToJsonString() if job.HasField(name) else ""


def step_tree(stub, job: gateway_pb2.Job, depth: int = 0, lister: _Lister | None = None) -> list[dict[str, Any]]:
    """The steps of `job` as plain data: name, type, child job id, status, start/end/duration,
    and their own steps (``steps``)."""
    nodes: list[dict[str, Any]] = []
    if depth >= MAX_DEPTH:
        return nodes
    lister = lister or _Lister(stub)
    for child in step_children(stub, job, lister):
        node: dict[str, Any] = {"step": child.step_name, "job_id": child.job_id}
        node.update(workflow_type=child.workflow_type, status=STATUS_NAMES.get(child.status, "?"))
        node.update(started_at=_time(child, "started_at"), finished_at=_time(child, "finished_at"))
        if child.HasField("started_at") and child.HasField("finished_at"):
            span = child.finished_at.ToNanoseconds() - child.started_at.ToNanoseconds()
            node["duration_s"] = round(span / 1e9, 3)
        node["steps"] = step_tree(stub, child, depth + 1, lister)
        nodes.append(node)
    return nodes


def _label(node: dict[str, Any]) -> str:
    status = node.get("status", "?")
    colour = {"SUCCEEDED": "green", "FAILED": "red", "TIMED_OUT": "red", "CANCELLED": "yellow"}.get(status, "cyan")
    parts = [f"[bold]{node['step']}[/bold]", node.get("workflow_type", ""), f"[{colour}]{status}[/{colour}]"]
    if node.get("started_at"):  # the clock time (UTC) in the tree; the date is in --json
        ended = f"{node['duration_s']:.2f} s" if "duration_s" in node else "running"
        parts.append(f"{node['started_at'][11:22]}Z, {ended}")
    parts.append(f"[dim]{node['job_id']}[/dim]")
    return "  ".join(p for p in parts if p)


def print_tree(console: Console, job: gateway_pb2.Job, nodes: list[dict[str, Any]]) -> None:
    """The step tree for people: the job, then each step with its status, times and job id."""
    tree = Tree(f"[bold]{job.workflow_type}[/bold]  {STATUS_NAMES.get(job.status, '?')}  [dim]{job.job_id}[/dim]")

    def add(branch: Tree, children: list[dict[str, Any]]) -> None:
        for node in children:
            add(branch.add(_label(node)), node.get("steps", []))

    add(tree, nodes)
    console.print(tree)
