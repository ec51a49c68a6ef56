"""Following a job from the terminal: its events as a progress bar, plain lines or JSON, then its result."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from workmesh.services.cli._client import out, to_dict
from workmesh.services.core.limits import STATUS_NAMES, TERMINAL
from workmesh.v1 import common_pb2, gateway_pb2


def events(stub, job_id: str, after_seq: int = 0) -> Iterator[common_pb2.JobEvent]:
    yield from stub.WatchJob(gateway_pb2.WatchJobRequest(job_id=job_id, after_seq=after_seq))


def follow(stub, job_id: str, *, after_seq: int = 0, as_json: bool = False) -> int:
    """Stream a job's events to the terminal; exit code 0 when it succeeded.

    ``--json`` prints one JSON event per line; on a terminal a progress bar shows progress and
    the worker's messages; otherwise (a pipe, a log file) each event is one plain line.
    """
    final = common_pb2.JOB_STATUS_UNSPECIFIED
    if as_json:
        for event in events(stub, job_id, after_seq):
            print(json.dumps(to_dict(event)), flush=True)
            if event.WhichOneof("payload") == "status" and event.status.status in TERMINAL:
                final = event.status.status
        return 0 if final == common_pb2.JOB_STATUS_SUCCEEDED else 1
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[message]}"),
    )
    bar = Progress(*columns, console=out, transient=False) if out.is_terminal else None
    with bar or contextlib.nullcontext():
        update = functools.partial(bar.update, bar.add_task(job_id[:12], total=1.0, message="")) if bar else None
        console = bar.console if bar else out
        for event in events(stub, job_id, after_seq):
            kind = event.WhichOneof("payload")
            if kind == "progress":
                if update:
                    update(completed=event.progress.fraction, message=event.progress.message)
                else:
                    console.print(f"{event.progress.fraction:5.0%}  {event.progress.message}")
            elif kind == "log":
                level = common_pb2.LogLevel.Name(event.log.level).removeprefix("LOG_LEVEL_").lower()
                console.print(f"[dim]{level}[/dim] {event.log.message}")
            elif kind == "status":
                name = STATUS_NAMES.get(event.status.status, "?").lower()
                reason = f" ({event.status.reason})" if event.status.reason else ""
                if update:
                    update(message=name + reason)
                else:
                    console.print(f"status {name}{reason}")
                if event.status.status in TERMINAL:
                    final = event.status.status
                    if update and final == common_pb2.JOB_STATUS_SUCCEEDED:
                        update(completed=1.0)
            elif kind == "result":
                print_result(console, event.result)
            elif kind == "error":
                console.print(f"[red]error[/red] {event.error.code}: {event.error.message}")
    out.print(f"{job_id}: {STATUS_NAMES.get(final, '?')}")
    return 0 if final == common_pb2.JOB_STATUS_SUCCEEDED else 1


def print_result(console: Console, result: common_pb2.JobResult) -> None:
    """A job result for people: the outputs, then a summary of the series it wrote."""
    console.print_json(json.dumps(to_dict(result.outputs) if result.HasField("outputs") else {}))
    if result.data:
        console.print(f"data: {len(result.data):,} bytes")
    if result.series:
        per_measurement: dict[str, set[str]] = {}
        for ref in result.series:
            per_measurement.setdefault(ref.measurement, set()).add(ref.field)
        shown = ", ".join(f"{m} ({', '.join(sorted(f))})" for m, f in sorted(per_measurement.items()))
        console.print(
            f"{len(result.series):,} series in {result.series[0].store}: {shown} — list them with `workmesh series JOB`"
        )
