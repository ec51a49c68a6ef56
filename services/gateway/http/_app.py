"""The HTTP server of the gateway: API routes, console, health, errors as google.rpc.Status."""

from __future__ import annotations

import html
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
from aiohttp import web

from workmesh.services.core import env as envvars
from workmesh.services.gateway.http._api import JOB_ID, GatewayRoutes
from workmesh.services.gateway.http._auth import authenticate
from workmesh.services.gateway.http._calls import CallError
from workmesh.services.gateway.http._openapi import document
from workmesh.services.gateway.http._series import ResultsLocator, SeriesRoutes
from workmesh.services.gateway.http._shares import ShareRoutes
from workmesh.services.gateway.http._sse import StreamCounter

log = logging.getLogger("workmesh.gateway.http")

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_ADDRESS = "127.0.0.1:8080"
DEFAULT_MAX_BODY = 1 << 20
MAX_BODY = web.AppKey("max_body", int)
STREAMS = web.AppKey("streams", StreamCounter)
RESULTS = web.AppKey("results", ResultsLocator)


@dataclass(frozen=True)
class HttpConfig:
    """Settings of the gateway's HTTP server.

    Attributes:
        address: ``host:port`` (``WORKMESH_HTTP_ADDR``, default 127.0.0.1:8080; port 0 picks a
            free one); None: no HTTP server (``WORKMESH_HTTP_ADDR=0`` or ``off``).
        max_body_bytes: largest request body (``WORKMESH_HTTP_MAX_BODY``, default 1 MiB); larger
            ones get 413 RESOURCE_EXHAUSTED.
        sse_heartbeat: seconds between keep-alive comments on a quiet SSE stream
            (``WORKMESH_HTTP_HEARTBEAT``, default 15).
        console: serve the web console at ``/``.
        trace_url: where the console links a job's trace id (``WORKMESH_HTTP_TRACE_URL``): an
            ``http(s)://`` address of a tracing UI with ``{trace_id}`` where the id goes, e.g.
            ``http://localhost:16686/trace/{trace_id}`` for Jaeger; empty: the id is shown as text.
    """

    address: str | None = DEFAULT_ADDRESS
    max_body_bytes: int = DEFAULT_MAX_BODY
    sse_heartbeat: float = 15.0
    console: bool = True
    trace_url: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HttpConfig:
        """Read ``WORKMESH_HTTP_ADDR``, ``_MAX_BODY``, ``_HEARTBEAT`` and ``_TRACE_URL``.

        Raises:
            ValueError: a variable is malformed; the message names it.
        """
        env = os.environ if env is None else env
        raw = env.get("WORKMESH_HTTP_ADDR", "").strip()
        address = parse_address(raw) if raw else cls.address
        return cls(
            address=address,
            max_body_bytes=envvars.integer(env, "WORKMESH_HTTP_MAX_BODY", cls.max_body_bytes, minimum=1024),
            sse_heartbeat=envvars.seconds(env, "WORKMESH_HTTP_HEARTBEAT", cls.sse_heartbeat, above=0, maximum=86400),
            trace_url=parse_trace_url(env.get("WORKMESH_HTTP_TRACE_URL", "").strip()),
        )


def parse_trace_url(raw: str) -> str:
    """A tracing UI's address template for ``WORKMESH_HTTP_TRACE_URL`` ("" stays "": no link).

    Raises:
        ValueError: not an ``http(s)://`` address, or no ``{trace_id}`` in it.
    """
    if not raw:
        return ""
    if not raw.startswith(("http://", "https://")) or "{trace_id}" not in raw:
        raise ValueError(
            "WORKMESH_HTTP_TRACE_URL: must be an http:// or https:// address with {trace_id} where the id goes "
            f"(e.g. http://localhost:16686/trace/{{trace_id}}), not {raw!r}"
        )
    return raw


def parse_address(raw: str) -> str | None:
    """``host:port`` as given, or None for ``0``/``off`` (no HTTP server).

    Raises:
        ValueError: neither; the message names ``WORKMESH_HTTP_ADDR``.
    """
    if raw.lower() in ("0", "off", "none", "false"):
        return None
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"WORKMESH_HTTP_ADDR={raw!r}: must be host:port, or 0/off for no HTTP server")
    return raw


_REASONS = {
    404: (grpc.StatusCode.NOT_FOUND, "no such route"),
    405: (grpc.StatusCode.UNIMPLEMENTED, "method not allowed on this route"),
    413: (grpc.StatusCode.RESOURCE_EXHAUSTED, "body: larger than the limit"),
}


def _status_response(error: CallError, status: int | None = None, headers=None) -> web.Response:
    return web.json_response(error.json(), status=status or error.http_status, headers=headers)


@web.middleware
async def _errors(request: web.Request, handler):
    try:
        return await handler(request)
    except CallError as exc:
        return _status_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code, text = _REASONS.get(exc.status, (grpc.StatusCode.INVALID_ARGUMENT, exc.reason))
        headers = None
        if exc.status == 413:
            text = f"{text} of {request.app[MAX_BODY]} bytes"
        elif exc.status == 404:
            text = f"{text}: {request.method} {request.path}"
        elif isinstance(exc, web.HTTPMethodNotAllowed):
            allowed = sorted(exc.allowed_methods)
            text = f"{text}: {request.method} {request.path} (allowed: {', '.join(allowed)})"
            headers = {"Allow": ",".join(allowed)}
        return _status_response(CallError(code, text), exc.status, headers)
    except Exception as exc:
        log.exception("HTTP %s %s failed", request.method, request.path)
        return _status_response(CallError.of(exc))


def create_app(
    servicer,
    registry,
    config: HttpConfig,
    *,
    ready: Callable[[], bool] = lambda: True,
    stats: Callable[[], dict] = dict,
    authenticator=None,
    capabilities=None,
    sharing=None,
) -> web.Application:
    """The aiohttp application over a gateway servicer.

    Args:
        servicer: the :class:`GatewayServicer` the gRPC server serves.
        registry: a ``RegistryConfig``: where to find the results service.
        config: the HTTP settings.
        ready: whether the gateway serves now (``/readyz``).
        stats: more figures for ``/healthz`` (e.g. how many type watchers the catalog feeds).
        authenticator: when authentication is on, the gRPC server's: every ``/v1/`` route but
            the OpenAPI document then needs ``Authorization: Bearer <token>``.
        capabilities: with authentication on, signs the read capabilities the series routes
            call the results service with (see ``SeriesRoutes``).
        sharing: the ``SharingServicer`` the gRPC server serves (None: the sharing routes
            answer UNIMPLEMENTED).
    """
    middlewares = [_errors] if authenticator is None else [_errors, authenticate(authenticator)]
    app = web.Application(middlewares=middlewares, client_max_size=config.max_body_bytes)
    app[MAX_BODY] = config.max_body_bytes
    streams = app[STREAMS] = StreamCounter()
    results = app[RESULTS] = ResultsLocator(registry)
    GatewayRoutes(servicer, streams, heartbeat=config.sse_heartbeat).add_to(app)
    SeriesRoutes(servicer, results, capabilities).add_to(app)
    ShareRoutes(sharing).add_to(app, JOB_ID)
    openapi = json.dumps(document(max_body_bytes=config.max_body_bytes))

    async def openapi_json(request: web.Request) -> web.Response:
        return web.Response(text=openapi, content_type="application/json")

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "SERVING", "sseStreams": streams.open, **stats()})

    async def readyz(request: web.Request) -> web.Response:
        ok = ready()
        return web.json_response({"status": "SERVING" if ok else "NOT_SERVING"}, status=200 if ok else 503)

    app.router.add_get("/v1/openapi.json", openapi_json)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if config.console:
        # The page carries the console's settings in <meta> tags, so it needs no settings route.
        page = (STATIC / "index.html").read_text(encoding="utf-8")
        meta = f'<meta name="workmesh-trace-url" content="{html.escape(config.trace_url)}">'
        page = page.replace("<head>", f"<head>\n  {meta}", 1)

        async def index(request: web.Request) -> web.Response:
            return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-cache"})

        app.router.add_get("/", index)
        app.router.add_static("/static/", STATIC, append_version=False)

    async def close_results(app: web.Application) -> None:
        await results.close()

    app.on_cleanup.append(close_results)
    return app


class HttpServer:
    """The gateway's HTTP server: :meth:`start` binds and serves, :meth:`stop` ends it.

    Attributes:
        port: the bound port (after start).
        app: the aiohttp application (its ``"streams"`` counts open SSE streams).
    """

    def __init__(
        self,
        servicer,
        registry,
        config: HttpConfig,
        *,
        ready: Callable[[], bool] = lambda: True,
        stats: Callable[[], dict] = dict,
        authenticator=None,
        capabilities=None,
        sharing=None,
    ) -> None:
        self.config = config
        self.app = create_app(
            servicer,
            registry,
            config,
            ready=ready,
            stats=stats,
            authenticator=authenticator,
            capabilities=capabilities,
            sharing=sharing,
        )
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def streams(self) -> StreamCounter:
        return self.app[STREAMS]

    @property
    def url(self) -> str:
        host = (self.config.address or "").rpartition(":")[0].strip("[]")
        host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        return f"http://{host}:{self.port}/"

    async def start(self) -> None:
        """Bind ``config.address`` and serve."""
        host, _, port = (self.config.address or "").rpartition(":")
        # handler_cancellation: a client that disconnects cancels its handler, so an SSE stream
        # waiting for the next event lets go of its subscription at once.
        self._runner = web.AppRunner(self.app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host.strip("[]"), int(port), reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("HTTP API and console on %s", self.url)

    async def stop(self) -> None:
        """Stop accepting, end open streams, close the results clients."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
