"""The shared facts: message limit, terminal statuses, status and parameter-type names."""

from __future__ import annotations

import re
from pathlib import Path

from workmesh.services.core.limits import (
    MAX_MESSAGE_BYTES,
    PARAM_TYPE_NAMES,
    STATUS_NAMES,
    TERMINAL,
    TERMINAL_NAMES,
    message_options,
    status_name,
)
from workmesh.v1 import common_pb2 as c

REPO = Path(__file__).resolve().parents[2]


def test_terminal_statuses_are_the_four_ends():
    assert {c.JOB_STATUS_SUCCEEDED, c.JOB_STATUS_FAILED, c.JOB_STATUS_CANCELLED, c.JOB_STATUS_TIMED_OUT} == TERMINAL
    assert {"JOB_STATUS_SUCCEEDED", "JOB_STATUS_FAILED", "JOB_STATUS_CANCELLED", "JOB_STATUS_TIMED_OUT"} == (
        TERMINAL_NAMES
    )
    assert c.JOB_STATUS_RUNNING not in TERMINAL and c.JOB_STATUS_QUEUED not in TERMINAL


def test_names():
    assert status_name(c.JOB_STATUS_TIMED_OUT) == "TIMED_OUT" == STATUS_NAMES[c.JOB_STATUS_TIMED_OUT]
    assert status_name("JOB_STATUS_CANCELLED") == "CANCELLED" and status_name("SUCCEEDED") == "SUCCEEDED"
    assert status_name(999) == "?"
    assert PARAM_TYPE_NAMES[c.PARAM_TYPE_DURATION] == "duration"
    assert c.PARAM_TYPE_UNSPECIFIED not in PARAM_TYPE_NAMES  # not a type a parameter can have
    assert set(PARAM_TYPE_NAMES.values()) == {"string", "enum", "bool", "int", "float", "datetime", "duration", "bytes"}


def test_the_message_limit_is_written_once():
    assert MAX_MESSAGE_BYTES == 64 * 1024 * 1024
    assert dict(message_options()) == {
        "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
        "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
    }
    written = re.compile(r"64\s*\*\s*1024\s*\*\s*1024|64\s*<<\s*20|67108864")
    copies = [
        str(path.relative_to(REPO))
        for folder in ("services", "workers", "registry")
        for path in (REPO / folder).rglob("*.py")
        if written.search(path.read_text()) and path.name != "limits.py"
    ]
    assert copies == []
