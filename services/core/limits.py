"""Facts every service shares, written once: the gRPC message limit, the terminal job statuses and
the names of statuses and parameter types."""

from __future__ import annotations

from workmesh.v1 import common_pb2

__all__ = [
    "MAX_MESSAGE_BYTES",
    "PARAM_TYPE_NAMES",
    "STATUS_NAMES",
    "TERMINAL",
    "TERMINAL_NAMES",
    "message_options",
    "status_name",
]

# The largest gRPC message any workmesh channel or server sends or receives. Results and series
# chunks carry a few MB; gRPC's own default (4 MiB receive) would be too tight.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

# A job ends in exactly one of these.
TERMINAL: frozenset[int] = frozenset(
    {
        common_pb2.JOB_STATUS_SUCCEEDED,
        common_pb2.JOB_STATUS_FAILED,
        common_pb2.JOB_STATUS_CANCELLED,
        common_pb2.JOB_STATUS_TIMED_OUT,
    }
)
# The same as their enum names, as JSON (the HTTP API, MessageToDict) spells them.
TERMINAL_NAMES: frozenset[str] = frozenset(common_pb2.JobStatus.Name(s) for s in TERMINAL)

# JOB_STATUS_RUNNING -> "RUNNING", for every status (UNSPECIFIED included).
STATUS_NAMES: dict[int, str] = {v: k.removeprefix("JOB_STATUS_") for k, v in common_pb2.JobStatus.items()}
# PARAM_TYPE_INT -> "int", for every real type (not UNSPECIFIED).
PARAM_TYPE_NAMES: dict[int, str] = {
    v: k.removeprefix("PARAM_TYPE_").lower() for k, v in common_pb2.ParamType.items() if v
}


def status_name(status: int | str) -> str:
    """``JOB_STATUS_RUNNING`` (the number, or its enum name) -> ``"RUNNING"``; an unknown number
    -> ``"?"``."""
    if isinstance(status, int):
        return STATUS_NAMES.get(status, "?")
    return status.removeprefix("JOB_STATUS_")


def message_options(max_bytes: int = MAX_MESSAGE_BYTES) -> list[tuple[str, int]]:
    """gRPC channel/server options that send and receive messages up to `max_bytes`."""
    return [("grpc.max_send_message_length", max_bytes), ("grpc.max_receive_message_length", max_bytes)]
