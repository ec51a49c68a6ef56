"""``ctx.step``: a handler runs another workflow type as a child job, through the gateway.

The gateway's RunStep does the work (find-or-create of the child keyed by parent job and step
name, dispatch, waiting; see services/gateway/_steps.py): the worker only calls it, with the
address the gateway sent in the attempt's ExecuteRequest, as one message per step on the
attempt's RunSteps stream (``_step_stream``; RunStep itself with a gateway that has none). A
re-executed parent asks again for the same steps and gets the stored results of those that
succeeded, at once.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import json_format

from workmesh.services.core.auth import CAPABILITY_METADATA
from workmesh.services.core.errors import ApplicationError
from workmesh.services.core.limits import MAX_MESSAGE_BYTES
from workmesh.services.core.tls import TlsConfig
from workmesh.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc
from workmesh.workers import _convert as cv
from workmesh.workers._context import Result
from workmesh.workers._step_stream import StepRefused, stream_of

if TYPE_CHECKING:
    from workmesh.workers._job import Job

# How long a step call keeps trying while the gateway is unreachable (a gateway restart): the
# step's child job lives in the store meanwhile and is found again.
UNAVAILABLE_PATIENCE = 60.0
_channels: dict[tuple[int, str, TlsConfig], tuple[grpc.aio.Channel, gateway_pb2_grpc.GatewayStub]] = {}
_unary_only: set[str] = set()  # gateways without RunSteps (UNIMPLEMENTED): asked with RunStep


class StepFailed(ApplicationError):
    """A step did not succeed: its child job failed, or the gateway refused the step.

    Catch it in the handler to carry on without the step; uncaught, the job fails with the
    step's error code.

    Attributes:
        step_name: the step.
        job_id: the child job ("" when none was made, e.g. an unknown type).
        status: the gRPC status the gateway refused the step with (e.g. ``NOT_FOUND`` for an
            unknown type, ``RESOURCE_EXHAUSTED`` for too many steps), None when the child ran.
        child_status: how the child job ended (a ``JobStatus``), 0 when none ran.
    """

    def __init__(
        self,
        message: str,
        *,
        step_name: str,
        code: str,
        job_id: str = "",
        status: grpc.StatusCode | None = None,
        child_status: int = 0,
        retryable: bool = False,
    ) -> None:
        super().__init__(message, code=code, retryable=retryable)
        self.step_name = step_name
        self.job_id = job_id
        self.status = status
        self.child_status = child_status


def param_value(name: str, obj: Any) -> common_pb2.ParamValue:
    """A ParamValue for a Python value, without the child type's spec (the gateway checks it).

    Integral floats are sent as ints: a step's params often come from an earlier step's outputs,
    where every number is a float (JSON), and an ``int`` parameter accepts only whole numbers
    while a ``float`` one widens ints.
    """
    if isinstance(obj, bool):
        return common_pb2.ParamValue(bool_value=obj)
    if isinstance(obj, int):
        return common_pb2.ParamValue(int_value=obj)
    if isinstance(obj, float):
        if math.isfinite(obj) and obj.is_integer() and abs(obj) < 2**53:
            return common_pb2.ParamValue(int_value=int(obj))
        return common_pb2.ParamValue(float_value=obj)
    if isinstance(obj, str):
        return common_pb2.ParamValue(string_value=obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return common_pb2.ParamValue(bytes_value=bytes(obj))
    if isinstance(obj, _dt.datetime):
        return cv.datetime_value(obj)
    if isinstance(obj, _dt.timedelta):
        return cv.duration_value(obj.total_seconds())
    if isinstance(obj, common_pb2.ParamValue):
        return obj
    raise TypeError(f"step param {name!r}: {type(obj).__name__} is not a parameter value")


def step_result(job: gateway_pb2.Job) -> Result:
    """The :class:`Result` of a succeeded child job."""
    outputs = json_format.MessageToDict(job.result.outputs) if job.result.HasField("outputs") else {}
    return Result(outputs=outputs, data=job.result.data, series=tuple(job.result.series))


def with_steps(result: common_pb2.JobResult, steps: Iterable[Sequence[common_pb2.SeriesRef]]) -> None:
    """Append the series of a workflow's steps to its `result`, after its own, each ref once.

    A step's result already holds its own steps' series, so a workflow's result lists the
    series of its whole tree; a ref the handler returned itself (e.g. passed on from a step's
    Result) is not listed twice.
    """
    seen = {ref.SerializeToString(deterministic=True) for ref in result.series}
    for refs in steps:
        for ref in refs:
            key = ref.SerializeToString(deterministic=True)
            if key not in seen:
                seen.add(key)
                result.series.append(ref)


def _stub(address: str, tls: TlsConfig) -> gateway_pb2_grpc.GatewayStub:
    """A stub for the gateway at `address`: over TLS verified against the worker's CA
    (``WORKMESH_TLS_CA``, and ``WORKMESH_TLS_SERVER_NAME`` when set), else plaintext."""
    key = (id(asyncio.get_running_loop()), address, tls)
    entry = _channels.get(key)
    if entry is None:
        channel = tls.aio_channel(
            address,
            options=(
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ),
        )
        entry = _channels[key] = (channel, gateway_pb2_grpc.GatewayStub(channel))
    return entry[1]


async def run_step(
    job: Job, name: str, workflow_type: str, params: Mapping[str, Any] | None, weight: float = 1.0
) -> Result:
    """Run one step of `job` (see :meth:`Context.step`)."""
    if not job.gateway_address:
        raise StepFailed(
            f"step {name!r}: this attempt came without a gateway address (ExecuteRequest.gateway_address), "
            "so it cannot start steps",
            step_name=name,
            code="STEPS_UNAVAILABLE",
        )
    job.step_series.setdefault(name, ())  # its place among the job's series: the order asked for
    request = gateway_pb2.RunStepRequest(
        parent_job_id=job.job_id,
        parent_attempt=job.attempt,
        step_name=name,
        workflow_type=workflow_type,
        weight=weight,
    )
    for key, value in (params or {}).items():
        request.params[str(key)].CopyFrom(param_value(str(key), value))
    # With authentication on, the attempt's capability is its credential (the gateway checks it
    # is this attempt's of this job, and starts the step as the job's owner).
    metadata = ((CAPABILITY_METADATA, job.series_token),) if job.series_token else None
    stub = _stub(job.gateway_address, job.host.tls)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + UNAVAILABLE_PATIENCE
    delay = 0.1
    while True:
        try:
            if job.gateway_address in _unary_only:
                reply = await stub.RunStep(request, metadata=metadata, wait_for_ready=False)
            else:  # one message on the attempt's RunSteps stream
                reply = await stream_of(job.job_id, job.attempt, stub, metadata).ask(request)
            break
        except (grpc.aio.AioRpcError, StepRefused) as exc:
            code = exc.code()
            if code == grpc.StatusCode.UNIMPLEMENTED and job.gateway_address not in _unary_only:
                _unary_only.add(job.gateway_address)  # a gateway from before RunSteps
                continue
            if code == grpc.StatusCode.UNAVAILABLE and loop.time() < give_up:
                await asyncio.sleep(delay)  # the gateway restarts: the step is found again after
                delay = min(delay * 2, 2.0)
                continue
            hint = ""
            if code == grpc.StatusCode.UNAUTHENTICATED and not job.series_token:
                hint = (
                    " (the gateway has authentication on but gave this attempt no capability: "
                    "set WORKMESH_SERIES_KEY on the gateway)"
                )
            raise StepFailed(
                f"step {name!r}: {exc.details() or code.name}{hint}",
                step_name=name,
                code=code.name,
                status=code,
                retryable=code == grpc.StatusCode.UNAVAILABLE,
            ) from None
    child = reply.job
    if child.status == common_pb2.JOB_STATUS_SUCCEEDED:
        result = step_result(child)
        job.step_series[name] = tuple(result.series)
        return result
    status = common_pb2.JobStatus.Name(child.status).removeprefix("JOB_STATUS_")
    error = child.error
    raise StepFailed(
        f"step {name!r} ({workflow_type}, job {child.job_id}) ended {status}: {error.code}: {error.message}",
        step_name=name,
        code=error.code or status,
        job_id=child.job_id,
        child_status=child.status,
    )
