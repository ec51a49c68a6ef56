"""The step tree of a workflow job (issue 13) for ``workmesh job`` and ``workmesh demo``.

A job's steps are read from its own events (``JobEvent.step``: each step's name, type and
child job id, in the order started), then each child job with GetJob (status and times) and,
recursively, its own steps. A step that ran again (it failed, and the job was retried) shows
its latest child job.
"""

from __future__ import annotations

from typing import Any

import grpc
from rich.console import Console
from rich.tree import Tree

from workmesh.services.core.limits import STATUS_NAMES
from workmesh.v1 import common_pb2, gateway_pb2

MAX_DEPTH = 16  # deeper than any gateway lets steps nest (WORKMESH_MAX_STEP_DEPTH): a loop guard


def step_children(stub, job: gateway_pb2.Job) -> list[tuple[str, str]]:
    """(step name, child job id) of `job`'s steps, in the order they first started."""
    if not job.last_seq:
        return []
    latest: dict[str, str] = {}
    call = stub.WatchJob(gateway_pb2.WatchJobRequest(job_id=job.job_id), timeout=30)
    try:
        for event in call:
            if event.WhichOneof("payload") == "step" and event.step.kind == common_pb2.StepEvent.KIND_STARTED:
                latest[event.step.step_name] = event.step.child_job_id
            if event.seq >= job.last_seq:  # the events stored when GetJob answered: a running job's stream goes on
                break
    finally:
        call.cancel()
    return list(latest.items())


def _time(job: gateway_pb2.Job, name: str) -> str:
    return getattr(job, name).ToJsonString() if job.HasField(name) else ""


def step_tree(stub, job: gateway_pb2.Job, depth: int = 0) -> list[dict[str, Any]]:
    """The steps of `job` as plain data: name, type, child job id, status, start/end/duration,
    and their own steps (``steps``)."""
    nodes: list[dict[str, Any]] = []
    if depth >= MAX_DEPTH:
        return nodes
    for name, child_id in step_children(stub, job):
        node: dict[str, Any] = {"step": name, "job_id": child_id}
        try:
            child = stub.GetJob(gateway_pb2.GetJobRequest(job_id=child_id), timeout=10)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            node["status"] = "DELETED"
            nodes.append(node)
            continue
        node.update(workflow_type=child.workflow_type, status=STATUS_NAMES.get(child.status, "?"))
        node.update(started_at=_time(child, "started_at"), finished_at=_time(child, "finished_at"))
        if child.HasField("started_at") and child.HasField("finished_at"):
            span = child.finished_at.ToNanoseconds() - child.started_at.ToNanoseconds()
            node["duration_s"] = round(span / 1e9, 3)
        node["steps"] = step_tree(stub, child, depth + 1)
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
