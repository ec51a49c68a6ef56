"""Hypothesis strategies for the gateway's and the worker's request messages.

Every ParamValue kind, extreme and non-finite numbers, huge and empty strings, unicode, invalid
Timestamps and Durations, random ids and sequence numbers — and, for the streams, batches mixing
valid and garbage items.
"""

from __future__ import annotations

from google.protobuf import duration_pb2, timestamp_pb2
from hypothesis import strategies as st

from tests.fuzz.mesh import TYPES
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g
from workmesh.v1 import worker_pb2 as w

INT64 = st.integers(-(2**63), 2**63 - 1)
INT32 = st.integers(-(2**31), 2**31 - 1)
UINT64 = st.one_of(st.integers(0, 50), st.integers(0, 2**64 - 1), st.sampled_from([2**63 - 1, 2**63, 2**64 - 1]))
# Seconds of valid Timestamps: 0001-01-01 .. 9999-12-31; of valid Durations: ±10,000 years.
TS_MIN, TS_MAX = -62135596800, 253402300799
DUR_MAX = 315576000000

NASTY_TEXT = [
    "",
    " ",
    "\t\n",
    "\x00",
    "0",
    "-0",
    "1e308",
    "-1e308",
    "1.8e308",
    "nan",
    "inf",
    "-inf",
    "9" * 400,
    "9" * 400 + "h",
    "P" + "9" * 400 + "D",
    "PT",
    "P",
    "1h1h",
    "-",
    "+",
    ".",
    "e",
    "1e-400",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "2026-02-30T00:00:00",
    "true",
    "yes",
    "💥" * 20,
    "\u202e\u0301",
    "\ud7ff",
    "ß" * 100,
    "'; DROP TABLE jobs; --",
    "%s%n",
    "../../etc",
    "red",
    "green",
    "1h30m",
    "PT1H",
    "90s",
    "2026-01-01T00:00:00Z",
    "18446744073709551616",
]
TEXT = st.one_of(
    st.sampled_from(NASTY_TEXT), st.text(max_size=40), st.text(alphabet=st.characters(codec="utf-8"), max_size=200)
)
# Huge strings are rare and bounded (1 MiB or 4 MiB): they cost memory in every list view.
HUGE_TEXT = st.sampled_from([1024 * 1024, 4 * 1024 * 1024]).map(lambda n: "x" * n)
BIG_OR_NOT_TEXT = st.one_of(TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, HUGE_TEXT)

FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            0.0,
            -0.0,
            5e-324,
            1e308,
            -1e308,
            1.7976931348623157e308,
            float("nan"),
            float("inf"),
            float("-inf"),
            2.0**63,
            2.0**64,
        ]
    ),
)


def _timestamp(seconds: int, nanos: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def _duration(seconds: int, nanos: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=seconds, nanos=nanos)


TIMESTAMPS = st.builds(
    _timestamp,
    st.one_of(
        st.integers(TS_MIN, TS_MAX), INT64, st.sampled_from([TS_MIN - 1, TS_MAX + 1, 0, -1, 2**63 - 1, -(2**63)])
    ),
    st.one_of(st.integers(0, 999_999_999), INT32, st.sampled_from([-1, 10**9])),
)
DURATIONS = st.builds(
    _duration,
    st.one_of(
        st.integers(-DUR_MAX, DUR_MAX), INT64, st.sampled_from([DUR_MAX + 1, -DUR_MAX - 1, 0, 2**63 - 1, -(2**63)])
    ),
    st.one_of(st.integers(-999_999_999, 999_999_999), INT32, st.sampled_from([-1, 10**9])),
)

PARAM_VALUES = st.one_of(
    BIG_OR_NOT_TEXT.map(lambda v: c.ParamValue(string_value=v)),
    st.booleans().map(lambda v: c.ParamValue(bool_value=v)),
    st.one_of(INT64, st.sampled_from([0, 1, -1, 2**63 - 1, -(2**63)])).map(lambda v: c.ParamValue(int_value=v)),
    FLOATS.map(lambda v: c.ParamValue(float_value=v)),
    TIMESTAMPS.map(lambda v: c.ParamValue(datetime_value=v)),
    DURATIONS.map(lambda v: c.ParamValue(duration_value=v)),
    st.binary(max_size=200).map(lambda v: c.ParamValue(bytes_value=v)),
    st.just(c.ParamValue()),  # no kind set
)
PARAM_NAMES = st.one_of(
    st.sampled_from(["text", "colour", "flag", "count", "ratio", "start", "step", "blob", "seconds", "steps"]), TEXT
)
PARAMS = st.dictionaries(PARAM_NAMES, PARAM_VALUES, max_size=6)
# Mostly the fuzz mesh's own types (so requests reach validation and dispatch), sometimes not.
TYPE_NAMES = st.one_of(st.sampled_from(TYPES), st.sampled_from(TYPES), st.sampled_from(TYPES), TEXT)


def _submit(workflow_type, params, timeout, key, labels) -> g.SubmitJobRequest:
    request = g.SubmitJobRequest(workflow_type=workflow_type, params=params, idempotency_key=key, labels=labels)
    if timeout is not None:
        request.timeout.CopyFrom(timeout)
    return request


SUBMITS = st.builds(
    _submit,
    TYPE_NAMES,
    PARAMS,
    st.one_of(st.none(), DURATIONS),
    st.one_of(st.just(""), TEXT, st.text(min_size=250, max_size=300)),
    st.dictionaries(TEXT, TEXT, max_size=3),
)


RANDOM_IDS = st.one_of(TEXT, st.text(alphabet="0123456789abcdef", min_size=21, max_size=21))
# A fixed pool of ids for jobs the fuzz starts on a worker itself (Execute, Session), so that
# Attach and Cancel often hit a job that exists — drawn like any other value, so examples replay.
POOL = [f"fuzz-job-{i:02d}" for i in range(24)]
WORKER_JOB_IDS = st.one_of(st.sampled_from(POOL), st.sampled_from(POOL), RANDOM_IDS)
# Gateway job ids are made by the gateway: an int picks one the fuzz created (whatever exists
# when the example runs), a string is sent as it is.
JOB_REFS = st.one_of(st.integers(0, 999), st.integers(0, 999), RANDOM_IDS)


def resolve(ref: int | str, known: list[str]) -> str:
    """The job id a JOB_REFS value stands for, given the ids created so far."""
    if isinstance(ref, str):
        return ref
    return known[ref % len(known)] if known else ""


LIST_REQUESTS = st.builds(
    lambda size, token, statuses, wf: g.ListJobsRequest(
        page_size=size, page_token=token, statuses=statuses, workflow_type=wf
    ),
    st.one_of(st.integers(0, 1000), INT32),
    st.one_of(st.just(""), TEXT),
    st.lists(st.one_of(st.integers(0, 7), INT32), max_size=3),
    st.one_of(st.just(""), TYPE_NAMES),
)


def _execute_requests() -> st.SearchStrategy[w.ExecuteRequest]:
    def build(job_id, wf, params, attempt, deadline, trace):
        request = w.ExecuteRequest(job_id=job_id, workflow_type=wf, params=params, attempt=attempt, trace_context=trace)
        if deadline is not None:
            request.deadline.CopyFrom(deadline)
        return request

    return st.builds(
        build,
        WORKER_JOB_IDS,
        TYPE_NAMES,
        PARAMS,
        st.one_of(st.integers(0, 5), INT32),
        st.one_of(st.none(), TIMESTAMPS),
        st.dictionaries(TEXT, TEXT, max_size=2),
    )


EXECUTES = _execute_requests()
SESSION_COMMANDS = st.one_of(
    EXECUTES.map(lambda r: w.SessionCommand(execute=r)),
    st.builds(lambda j, s: w.SessionCommand(attach=w.AttachRequest(job_id=j, after_seq=s)), WORKER_JOB_IDS, UINT64),
    st.builds(lambda j, r: w.SessionCommand(cancel=w.CancelRequest(job_id=j, reason=r)), WORKER_JOB_IDS, TEXT),
    WORKER_JOB_IDS.map(lambda j: w.SessionCommand(detach=j)),
    st.just(w.SessionCommand()),  # no command set
)
