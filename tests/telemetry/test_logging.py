"""Log lines: JSON or console, trace and job fields, stdlib routed through the same formatter."""

from __future__ import annotations

import io
import json
import logging

import pytest

from workmesh.services.core.telemetry import bind_job, configure_logging, get_logger, job_span


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_job_and_trace_fields_from_structlog_and_stdlib(captured):
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    with bind_job(job_id="j-1", workflow_type="demo"), job_span("job.execute", job_id="j-1") as span:
        get_logger("workmesh.test").info("from structlog", chunk=3)
        logging.getLogger("some.library").warning("from stdlib %s", "args")
    ours, theirs = lines(stream)
    trace_id = format(span.get_span_context().trace_id, "032x")
    span_id = format(span.get_span_context().span_id, "016x")
    assert ours["event"] == "from structlog" and ours["chunk"] == 3 and ours["level"] == "info"
    assert theirs["event"] == "from stdlib args" and theirs["level"] == "warning"
    assert theirs["logger"] == "some.library"
    for line in (ours, theirs):
        assert (line["job_id"], line["workflow_type"]) == ("j-1", "demo")
        assert (line["trace_id"], line["span_id"]) == (trace_id, span_id)
        assert line["timestamp"].endswith("Z")


def test_bind_job_statement_form_and_reset():
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    binding = bind_job(job_id="j-2", attempt=2, workflow_type=None)
    get_logger().info("bound")
    binding.reset()
    get_logger().info("unbound")
    bound, unbound = lines(stream)
    assert bound["job_id"] == "j-2" and bound["attempt"] == 2 and "workflow_type" not in bound
    assert "job_id" not in unbound and "trace_id" not in unbound


def test_level_filters_and_library_noise_is_kept_at_warning():
    stream = io.StringIO()
    configure_logging("WARNING", json=True, stream=stream)
    get_logger("workmesh.x").info("dropped")
    get_logger("workmesh.x").error("kept")
    configure_logging("DEBUG", json=True, stream=stream)
    logging.getLogger("grpc._cython.cygrpc").info("grpc chatter")
    logging.getLogger("aiohttp.access").info("GET /v1/health")
    get_logger("workmesh.x").debug("debug kept")
    assert [line["event"] for line in lines(stream)] == ["kept", "debug kept"]


def test_exceptions_are_rendered_into_the_json_line():
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    try:
        raise ValueError("bad chunk")
    except ValueError:
        get_logger().exception("write failed")
    (line,) = lines(stream)
    assert "ValueError: bad chunk" in line["exception"]


def test_console_format_is_readable_text(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setenv("WORKMESH_LOG_FORMAT", "console")
    configure_logging("INFO", stream=stream)  # json=None: the env var decides
    with bind_job(job_id="j-3"):
        get_logger("workmesh.dev").info("worker ready", port=50051)
    text = stream.getvalue()
    assert "worker ready" in text and "job_id=j-3" in text and "port=50051" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    assert "\x1b[" not in text  # no colour codes when the stream is not a terminal


def test_json_by_default_when_not_a_terminal(monkeypatch):
    monkeypatch.delenv("WORKMESH_LOG_FORMAT", raising=False)
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    get_logger().info("hello")
    assert lines(stream)[0]["event"] == "hello"


@pytest.mark.parametrize(
    ("var", "value", "call"),
    [
        ("WORKMESH_LOG_LEVEL", "LOUD", lambda: configure_logging(stream=io.StringIO())),
        ("WORKMESH_LOG_FORMAT", "xml", lambda: configure_logging(stream=io.StringIO())),
    ],
)
def test_bad_settings_name_the_variable(monkeypatch, var, value, call):
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError, match=var):
        call()


def test_console_tracebacks_leave_out_local_variables():
    stream = io.StringIO()
    configure_logging("INFO", json=False, stream=stream)
    # A local a traceback could show (built, so that the source lines shown do not contain it).
    database_url = "postgresql://workmesh:" + "hun" + "ter2" + "@db/workmesh"
    try:
        raise ConnectionError(f"database unreachable ({len(database_url)})")
    except ConnectionError:
        get_logger().exception("store failed")
    text = stream.getvalue()
    assert "ConnectionError" in text and "database unreachable" in text
    assert "hunter2" not in text
