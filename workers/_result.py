"""A handler's return value as the job's JobResult: outputs made JSON-like, data size-checked."""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping
from typing import Any

from workmesh.services.core.errors import ApplicationError
from workmesh.services.core.limits import MAX_MESSAGE_BYTES
from workmesh.v1 import common_pb2
from workmesh.workers._context import Result

MAX_RESULT_DATA = MAX_MESSAGE_BYTES - 1024 * 1024  # room for the outputs and the envelope


def _plain(obj: Any) -> Any:
    """A JSON-like copy of handler outputs (numpy values, datetimes, tuples, ...)."""
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, (int, float)):
        return float(obj) if math.isfinite(obj) else str(obj)
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_plain(v) for v in obj]
    if isinstance(obj, _dt.datetime):
        return obj.isoformat()
    if isinstance(obj, _dt.timedelta):
        return obj.total_seconds()
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return _plain(obj.tolist())
    if hasattr(obj, "__float__"):
        return float(obj)
    raise TypeError(f"output value {obj!r} of type {type(obj).__name__} is not JSON-like")


def job_result(value: Any) -> common_pb2.JobResult:
    """The JobResult for a handler's return value (a dict, a Result or None)."""
    if isinstance(value, Result):
        outputs, data, series = value.outputs, value.data, value.series
    elif value is None or isinstance(value, Mapping):
        outputs, data, series = value or {}, b"", ()
    else:
        raise TypeError(f"the handler returned a {type(value).__name__}; return a dict or workmesh.workers.Result")
    result = common_pb2.JobResult()
    if data:
        if len(data) > MAX_RESULT_DATA:
            raise ApplicationError(
                f"the result's data is {len(data)} bytes; at most {MAX_RESULT_DATA} fit in a "
                "message: write large results as series or files",
                code="RESULT_TOO_LARGE",
            )
        result.data = bytes(data)
    if series:
        result.series.extend(series)
    if outputs:
        try:  # the common case (plain Python values) converts directly
            result.outputs.update(outputs)
        except (TypeError, ValueError):
            result.outputs.Clear()
            result.outputs.update(_plain(outputs))
    return result
