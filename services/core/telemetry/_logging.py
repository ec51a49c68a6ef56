"""Structured logs: JSON lines in production, readable console lines in development.

structlog and the standard library share one handler and one formatter (structlog's
``ProcessorFormatter``), so a line from grpc, aiohttp or SQLAlchemy looks like ours and carries the
same job and trace fields. Job fields come from structlog contextvars (:func:`bind_job`, or
:func:`workmesh.services.core.telemetry.job_span`); trace_id/span_id are read from the current span when
the line is written.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import structlog
from opentelemetry import trace
from structlog.contextvars import bind_contextvars, reset_contextvars
from structlog.typing import EventDict, WrappedLogger

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Libraries that log per request or per connection at INFO/DEBUG: kept at WARNING.
NOISY_LOGGERS = (
    "grpc",
    "grpc._cython",
    "aiohttp",
    "aiohttp.access",
    "aiohttp.server",
    "asyncio",
    "urllib3",
    "sqlalchemy.engine",
    "alembic.runtime.migration",
)


def add_trace_context(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: add trace_id and span_id (hex) of the current span, if any."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict.setdefault("trace_id", trace.format_trace_id(ctx.trace_id))
        event_dict.setdefault("span_id", trace.format_span_id(ctx.span_id))
    return event_dict


def _use_json(json: bool | None, stream: TextIO) -> bool:
    if json is not None:
        return json
    fmt = os.environ.get("WORKMESH_LOG_FORMAT", "").strip().lower()
    if fmt in ("json", "console"):
        return fmt == "json"
    if fmt:
        raise ValueError(f"WORKMESH_LOG_FORMAT: must be 'json' or 'console', got {fmt!r}")
    isatty = getattr(stream, "isatty", None)
    return not (isatty and isatty())


def _level(level: str | None) -> int:
    name = (level or os.environ.get("WORKMESH_LOG_LEVEL") or "INFO").strip().upper()
    if name not in LEVELS:
        raise ValueError(f"WORKMESH_LOG_LEVEL: must be one of {', '.join(LEVELS)}, got {name!r}")
    return logging.getLevelName(name)


def configure_logging(level: str | None = None, json: bool | None = None, *, stream: TextIO | None = None) -> None:
    """Route structlog and standard-library logging through one formatter on `stream`.

    Safe to call again (the previous workmesh handler is replaced).

    Args:
        level: Level name; default ``WORKMESH_LOG_LEVEL`` or ``"INFO"``.
        json: True for JSON lines, False for console lines; None: JSON unless ``WORKMESH_LOG_FORMAT``
            says ``console`` or the stream is a terminal (``WORKMESH_LOG_FORMAT=json`` forces JSON).
        stream: Where lines go; default ``sys.stderr``.

    Raises:
        ValueError: An unknown level or WORKMESH_LOG_FORMAT (the message names the variable).
    """
    stream = stream if stream is not None else sys.stderr
    numeric_level = _level(level)
    as_json = _use_json(json, stream)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_context,
        structlog.processors.StackInfoRenderer(),
    ]
    if as_json:
        renderer: Any = structlog.processors.JSONRenderer()
        final: list[Any] = [structlog.processors.format_exc_info, renderer]
    else:
        isatty = getattr(stream, "isatty", None)
        colors = bool(isatty and isatty())
        # No local variables in tracebacks: they would print connection strings and tokens.
        tracebacks = structlog.dev.plain_traceback
        if structlog.dev.rich is not None:
            tracebacks = structlog.dev.RichTracebackFormatter(
                show_locals=False, color_system="auto" if colors else None
            )
        final = [structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=tracebacks)]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler._workmesh = True  # type: ignore[attr-defined]  # marks ours for replacement

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_workmesh", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric_level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, numeric_level))

    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a reconfiguration (tests, `workmesh dev`) must reach loggers made at import.
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None, **initial: Any) -> structlog.stdlib.BoundLogger:
    """A structlog logger (named like a stdlib logger, so levels per name apply)."""
    return structlog.get_logger(name, **initial)


class JobBinding:
    """Job fields bound to log lines; undo with :meth:`reset` or by leaving the ``with`` block."""

    def __init__(self, tokens: Mapping[str, Any]) -> None:
        self._tokens = tokens

    def reset(self) -> None:
        """Restore the fields to what they were before the binding."""
        if self._tokens:
            reset_contextvars(**self._tokens)
            self._tokens = {}

    def __enter__(self) -> JobBinding:
        return self

    def __exit__(self, *exc: object) -> None:
        self.reset()


def bind_job(*, job_id: str, workflow_type: str | None = None, **fields: Any) -> JobBinding:
    """Bind a job's fields to every log line of the current context (task) via structlog contextvars.

    Usable as a statement (bound until :meth:`JobBinding.reset` or the task ends) or as a ``with``
    block. Extra keyword fields (attempt=, instance=...) are bound too; None values are skipped.
    """
    values = {"job_id": job_id, "workflow_type": workflow_type, **fields}
    return JobBinding(bind_contextvars(**{k: v for k, v in values.items() if v is not None}))
