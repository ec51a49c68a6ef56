"""Property-based fuzzing of the results service (a real ``workmesh results`` process, both stores).

Random WriteSeries / ReadSeries / ListSeries / DeleteSeries requests — extreme and non-finite
numbers, huge and empty strings, unicode, random ids and enum values, mismatched array lengths,
overflowing regular timestamps, garbage bytes as requests and as stream items — against a
running service. Every answer must be OK or a status a client can act on; never UNKNOWN or
INTERNAL, and the process must stay up and healthy. No exception is allowed at the moment; if
one ever is, it is named in ``ALLOWED`` with its reason.

The quick profile (default suite) sends a few hundred requests per store; the long one
(``-m fuzz_long``) at least 10,000 on Parquet and 2,500 on InfluxDB (whose per-request cost is
its own: a database per job).
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.influx import influxd  # noqa: F401 - fixture
from tests.support import free_port, processes
from workmesh.v1 import results_pb2, results_pb2_grpc

BAD = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
ALLOWED: dict[tuple[str, grpc.StatusCode], str] = {}  # (rpc, code) -> why it is acceptable
QUICK = {"parquet": 300, "influx": 150}
LONG = {"parquet": 10_000, "influx": 2_500}
TIMEOUT = 60.0


@dataclass
class Server:
    address: str
    process: subprocess.Popen
    log: Path
    channel: grpc.Channel
    stub: results_pb2_grpc.ResultsStub
    jobs: list[str]
    seen: Counter

    def healthy(self) -> bool:
        if self.process.poll() is not None:
            return False
        health = health_pb2_grpc.HealthStub(self.channel)
        answer = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT)
        return answer.status == health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module", params=["parquet", "influx"])
def server(request, tmp_path_factory):
    store = request.param
    tmp = tmp_path_factory.mktemp(f"fuzz-{store}")
    port = free_port()
    env = {
        "WORKMESH_RESULTS_ADDR": f"127.0.0.1:{port}",
        "WORKMESH_RESULTS_STORE": store,
        "WORKMESH_RESULTS_DIR": str(tmp / "series"),
        "WORKMESH_LOG_FORMAT": "console",
        "WORKMESH_RESULTS_COMPACTION_DELAY": "0.2",
    }
    if store == "influx":
        env["INFLUX_URL"] = request.getfixturevalue("influxd").url
    with processes(tmp) as procs:
        process = procs.workmesh("results", env=env, name="results")
        channel = grpc.insecure_channel(
            f"127.0.0.1:{port}",
            options=[("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)],
        )
        try:
            grpc.channel_ready_future(channel).result(timeout=30)
            run = uuid.uuid4().hex[:6]
            yield Server(
                f"127.0.0.1:{port}",
                process,
                Path(process.log_path),
                channel,
                results_pb2_grpc.ResultsStub(channel),
                [f"fz{run}-{i}" for i in range(12)],
                Counter(),
            )
        finally:
            channel.close()


# -- strategies -------------------------------------------------------------------------------

INT64 = st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, 1, -1, 2**63 - 1, -(2**63), 2**62, 3600]))
ENUM = st.one_of(st.integers(0, 5), st.integers(-(2**31), 2**31 - 1))
UNIT = st.one_of(st.sampled_from([0, 1, 2, 3, 4]), st.sampled_from([0, 1, 2, 3, 4]), ENUM)
WILD_TEXT = st.one_of(
    st.text(max_size=20),
    st.text(max_size=300),
    st.just(""),
    st.just("x" * 5000),
    st.sampled_from(["time", "_series", "a b", "ä", "😀", "a\\", 'a"b', "a'b", "a,b=c", "\n"]),
)
GOOD_NAME = st.sampled_from(["heat", "power", "Q", "T", "flow.out", "a-b_c", "Z" * 128])
NAME = st.one_of(GOOD_NAME, GOOD_NAME, GOOD_NAME, WILD_TEXT)  # mostly valid: reach the stores
TAG_VALUE = st.one_of(
    st.text(min_size=1, max_size=20), st.sampled_from(["a\\", "a b", "a,b=c", "ä😀", "x" * 256]), WILD_TEXT
)
FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)
FINITE = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=64), st.just(float("nan")))


def job_id(server: Server):
    pool = st.sampled_from(server.jobs)
    return st.one_of(pool, pool, pool, WILD_TEXT)


def values(n: int):
    return st.one_of(
        st.lists(FINITE, min_size=n, max_size=n).map(lambda v: np.asarray(v, "<f8").tobytes()),
        st.lists(FINITE, min_size=n, max_size=n).map(lambda v: np.asarray(v, "<f8").tobytes()),
        st.lists(FLOATS, min_size=n, max_size=n).map(lambda v: np.asarray(v, "<f8").tobytes()),
        st.lists(st.sampled_from([0.0, 1.5, -1e308, 1e308, 5e-324, float("nan")]), min_size=n, max_size=n).map(
            lambda v: np.asarray(v, "<f8").tobytes()
        ),
        st.binary(max_size=8 * n + 9),  # wrong lengths and random bit patterns
    )


@st.composite
def chunks(draw, server: Server):
    n = draw(st.integers(0, 40))
    start = draw(st.one_of(st.integers(0, 2**40), INT64))
    regular = draw(st.booleans())
    chunk = results_pb2.SeriesChunk(time_unit=draw(UNIT))
    if draw(st.integers(0, 9)):
        chunk.key.job_id = draw(job_id(server))
        chunk.key.measurement = draw(NAME)
        for _ in range(draw(st.integers(0, 3))):
            chunk.key.tags[draw(NAME)] = draw(TAG_VALUE)
    if regular:
        chunk.time_start, chunk.time_step = start, draw(st.one_of(st.integers(1, 3600), st.integers(-5, 3600), INT64))
    else:
        steps = draw(st.lists(st.one_of(st.integers(1, 3600), INT64), min_size=n, max_size=n))
        ts = np.cumsum(np.asarray(steps, dtype=object)) + start
        ts = [int(t) if -(2**63) <= t < 2**63 else 0 for t in ts]
        chunk.timestamps = draw(st.one_of(st.just(np.asarray(ts, "<i8").tobytes()), st.binary(max_size=8 * n + 3)))
    for _ in range(draw(st.one_of(st.integers(1, 3), st.integers(1, 3), st.integers(0, 3)))):
        chunk.fields.add(name=draw(NAME), values=draw(values(n)), unit=draw(st.one_of(st.just(""), WILD_TEXT)))
    return chunk


@st.composite
def good_chunks(draw, server: Server):
    """Chunks the service must store: legal but extreme (unicode tags, edge floats, int64 edges)."""
    n = draw(st.integers(1, 40))
    unit = draw(st.sampled_from([0, 1, 2, 3, 4]))
    limit = (2**63 - 1) // {0: 1, 4: 1, 3: 10**3, 2: 10**6, 1: 10**9}[unit]
    step = draw(st.integers(1, max(1, limit // (2 * n))))
    start = draw(st.integers(-limit, limit - step * n))
    chunk = results_pb2.SeriesChunk(time_unit=unit, time_start=start, time_step=step)
    chunk.key.job_id = draw(st.sampled_from(server.jobs))
    chunk.key.measurement = draw(GOOD_NAME)
    for name in draw(st.lists(GOOD_NAME, max_size=3, unique=True)):
        chunk.key.tags[name] = draw(
            st.text(st.characters(categories=["L", "N", "P", "S", "Zs"]), min_size=1, max_size=256).filter(
                str.isprintable
            )
        )
    for name in draw(st.lists(GOOD_NAME.filter(lambda n: n != "time"), min_size=1, max_size=3, unique=True)):
        chunk.fields.add(
            name=name,
            values=np.asarray(draw(st.lists(FINITE, min_size=n, max_size=n)), "<f8").tobytes(),
            unit=draw(st.sampled_from(["", "kW", "°C", "m³/h"])),
        )
    if draw(st.booleans()):  # the same timestamps sent as an array
        chunk.timestamps = (start + np.arange(n, dtype=np.int64) * step).astype("<i8").tobytes()
        chunk.ClearField("time_start")
        chunk.ClearField("time_step")
    return chunk


@st.composite
def write_ops(draw, server: Server):
    items: list[bytes] = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            items.append(draw(st.binary(max_size=64)))  # a garbage stream item
        elif kind == 1:
            items.append(results_pb2.WriteSeriesRequest(flush=True).SerializeToString())
        else:
            chunk = draw(st.one_of(good_chunks(server), good_chunks(server), chunks(server)))
            request = results_pb2.WriteSeriesRequest(chunk=chunk, flush=draw(st.booleans()))
            items.append(request.SerializeToString())
    return ("WriteSeries", items)


@st.composite
def read_ops(draw, server: Server):
    request = results_pb2.ReadSeriesRequest(
        job_ids=draw(st.lists(job_id(server), max_size=4)),
        measurement=draw(st.one_of(st.just(""), NAME)),
        fields=draw(st.lists(NAME, max_size=3)),
        time_unit=draw(UNIT),
    )
    if draw(st.booleans()):
        request.window = draw(st.one_of(st.integers(1, 10**12), INT64))
        request.aggregate = draw(st.one_of(st.integers(1, 4), ENUM))
    for _ in range(draw(st.integers(0, 2))):
        request.tags[draw(NAME)] = draw(TAG_VALUE)
    if draw(st.booleans()):
        request.start = draw(INT64)
    if draw(st.booleans()):
        request.end = draw(INT64)
    return ("ReadSeries", request.SerializeToString())


@st.composite
def unary_ops(draw, server: Server):
    method = draw(st.sampled_from(["ListSeries", "DeleteSeries"]))
    if method == "ListSeries":
        request = results_pb2.ListSeriesRequest(job_id=draw(job_id(server)))
    else:
        request = results_pb2.DeleteSeriesRequest(job_id=draw(job_id(server)), restart=draw(st.booleans()))
    return (method, request.SerializeToString())


def garbage_ops():
    return st.tuples(st.sampled_from(["ReadSeries", "ListSeries", "DeleteSeries"]), st.binary(max_size=64))


def operations(server: Server):
    return st.one_of(write_ops(server), write_ops(server), read_ops(server), unary_ops(server), garbage_ops())


# -- running ------------------------------------------------------------------------------------


def call(server: Server, method: str, payload) -> grpc.StatusCode:
    path = f"/workmesh.v1.Results/{method}"
    try:
        if method == "WriteSeries":
            for _ in server.channel.stream_stream(path)(iter(payload), timeout=TIMEOUT):
                pass
        elif method == "ReadSeries":
            for _ in server.channel.unary_stream(path)(payload, timeout=TIMEOUT):
                pass
        else:
            server.channel.unary_unary(path)(payload, timeout=TIMEOUT)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def fuzz(server: Server, examples: int) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    )
    @given(data=st.data())
    def one(data) -> None:
        method, payload = data.draw(operations(server))
        code = call(server, method, payload)
        server.seen[(method, code.name)] += 1
        if code in BAD and (method, code) not in ALLOWED:
            raise AssertionError(
                f"{method} answered {code.name}; request: {payload!r}\nserver log: {server.log.read_text()[-3000:]}"
            )
        assert server.process.poll() is None, f"the results service exited: {server.log.read_text()[-3000:]}"

    server.seen.clear()
    began = time.monotonic()
    one()
    assert server.healthy(), f"the results service is not serving: {server.log.read_text()[-3000:]}"
    total = sum(server.seen.values())
    print(f"{total} requests in {time.monotonic() - began:.1f} s: {dict(server.seen)}")
    assert total >= examples


def _store(server: Server) -> str:
    return "influx" if "fuzz-influx" in str(server.log) else "parquet"


@pytest.mark.timeout(600)  # a few hundred requests to a real process: over 120 s on a loaded machine
def test_results_fuzz_quick(server):
    fuzz(server, QUICK[_store(server)])


@pytest.mark.fuzz_long
@pytest.mark.timeout(3600)  # bounded by its request count; minutes on a quiet machine, not the default 120 s
def test_results_fuzz_long(server):
    fuzz(server, LONG[_store(server)])
