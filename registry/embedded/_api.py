"""The embedded registry's HTTP API: the subset of Consul's that workmesh uses.

Read endpoints support blocking queries as Consul documents them: with ``?index=N`` the request
waits until the endpoint's index moves past N, or ``wait`` (default 5m, at most 10m, plus up to
wait/16 of random jitter) passes. Every read answers ``X-Consul-Index`` (≥ 1),
``X-Consul-KnownLeader`` and ``X-Consul-LastContact``. Malformed requests get 400 with a
plain-text reason, unknown ids 404, as Consul does.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from workmesh.registry.embedded._decode import BadRequest, decode_check_update, decode_service
from workmesh.services.core.durations import parse_duration
from workmesh.registry.embedded._state import CRITICAL, PASSING, WARNING, RegistryState

DEFAULT_WAIT = 300.0
MAX_WAIT = 600.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ChangeNotifier:
    """Wakes blocked queries after every write (each one re-checks its own index)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.closed = False

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    def current(self) -> asyncio.Event:
        return self._event

    def close(self) -> None:
        self.closed = True
        self.notify()


def _text(status: int, reason: str) -> web.Response:
    return web.Response(status=status, text=reason, content_type="text/plain")


def _json(data: Any, index: int | None = None) -> web.Response:
    headers = {"X-Consul-KnownLeader": "true", "X-Consul-LastContact": "0"}
    if index is not None:
        headers["X-Consul-Index"] = str(max(index, 1))
    return web.Response(body=json.dumps(data).encode(), content_type="application/json", headers=headers)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BadRequest as exc:
        return _text(400, str(exc))


def _blocking_params(request: web.Request) -> tuple[int, float]:
    if "filter" in request.query:
        # Silently ignoring it would hand back unfiltered data to a client that asked for less.
        raise BadRequest("The filter parameter is not supported by the embedded registry; "
                         "filter on the client or use ?tag=")
    raw_index = request.query.get("index", "")
    try:
        index = int(raw_index) if raw_index else 0
        if index < 0:
            raise ValueError
    except ValueError:
        raise BadRequest(f"Invalid index: {raw_index!r}") from None
    raw_wait = request.query.get("wait", "")
    try:
        wait = parse_duration(raw_wait) if raw_wait else DEFAULT_WAIT
    except ValueError:
        raise BadRequest(f"Invalid wait time: {raw_wait!r}") from None
    return index, min(max(wait, 0.0), MAX_WAIT)


def _flag(request: web.Request, name: str) -> bool:
    # Consul treats a present parameter as true unless it says false ("?passing" works).
    return name in request.query and request.query[name].lower() not in ("false", "0")


class RegistryApi:
    """aiohttp handlers over a :class:`RegistryState`."""

    def __init__(self, state: RegistryState, notifier: ChangeNotifier, leader: str) -> None:
        self.state, self.notifier, self.leader = state, notifier, leader

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_errors])
        r = app.router
        r.add_put("/v1/agent/service/register", self.register)
        r.add_put("/v1/agent/service/deregister/{service_id}", self.deregister)
        r.add_get("/v1/agent/services", self.agent_services)
        r.add_get("/v1/agent/checks", self.agent_checks)
        r.add_get("/v1/agent/self", self.agent_self)
        for verb in ("pass", "warn", "fail"):
            r.add_put(f"/v1/agent/check/{verb}/{{check_id}}", self.check_verb)
        r.add_put("/v1/agent/check/update/{check_id}", self.check_update)
        r.add_get("/v1/catalog/services", self.catalog_services)
        r.add_get("/v1/catalog/service/{name}", self.catalog_service)
        r.add_get("/v1/health/service/{name}", self.health_service)
        r.add_get("/v1/status/leader", self.status_leader)
        return app

    async def _blocking(self, request: web.Request, index_of: Callable[[], int],
                        render: Callable[[], Any]) -> web.Response:
        min_index, wait = _blocking_params(request)
        if min_index > 0:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait + random.uniform(0, wait / 16)
            # An index below the requested one means the registry restarted: answer at once so
            # the client sees the index go backwards and resets.
            while index_of() == min_index and not self.notifier.closed:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                changed = self.notifier.current()
                try:
                    await asyncio.wait_for(changed.wait(), remaining)
                except TimeoutError:
                    break
        return _json(render(), index_of())

    # -- agent ------------------------------------------------------------------------------
    async def register(self, request: web.Request) -> web.Response:
        sdef = decode_service(await request.read())
        self.state.register(sdef, replace_existing_checks=_flag(request, "replace-existing-checks"))
        return _text(200, "")

    async def deregister(self, request: web.Request) -> web.Response:
        service_id = request.match_info["service_id"]
        if not self.state.deregister(service_id):
            return _text(404, f'Unknown service ID "{service_id}". Ensure that the service ID is passed, '
                              "not the service name.")
        return _text(200, "")

    async def agent_services(self, request: web.Request) -> web.Response:
        return _json(self.state.agent_services())

    async def agent_checks(self, request: web.Request) -> web.Response:
        return _json(self.state.agent_checks())

    async def agent_self(self, request: web.Request) -> web.Response:
        state = self.state
        return _json({"Config": {"Datacenter": "dc1", "NodeName": state.node_name, "NodeID": state.node_id,
                                 "Server": True, "Version": "workmesh-embedded"},
                      "Member": {"Name": state.node_name, "Addr": state.node_address, "Status": 1},
                      "Meta": {}})

    async def check_verb(self, request: web.Request) -> web.Response:
        verb = request.path.split("/")[4]
        status = {"pass": PASSING, "warn": WARNING, "fail": CRITICAL}[verb]
        return self._ttl(request.match_info["check_id"], status, request.query.get("note", ""))

    async def check_update(self, request: web.Request) -> web.Response:
        status, output = decode_check_update(await request.read())
        return self._ttl(request.match_info["check_id"], status, output)

    def _ttl(self, check_id: str, status: str, output: str) -> web.Response:
        try:
            self.state.update_ttl(check_id, status, output)
        except KeyError:
            return _text(404, f'Unknown check ID "{check_id}". Ensure that the check ID is passed, '
                              "not the check name.")
        except ValueError as exc:
            return _text(500, str(exc))  # Consul answers 500 here too
        return _text(200, "")

    # -- catalog / health -------------------------------------------------------------------
    async def catalog_services(self, request: web.Request) -> web.Response:
        return await self._blocking(request, self.state.services_index, self.state.catalog_services)

    async def catalog_service(self, request: web.Request) -> web.Response:
        name, tags = request.match_info["name"], request.query.getall("tag", [])
        return await self._blocking(request, lambda: self.state.name_index(name),
                                    lambda: self.state.catalog_service(name, tags))

    async def health_service(self, request: web.Request) -> web.Response:
        name, tags = request.match_info["name"], request.query.getall("tag", [])
        passing = _flag(request, "passing")
        return await self._blocking(request, lambda: self.state.name_index(name),
                                    lambda: self.state.health_service(name, passing=passing, tags=tags))

    async def status_leader(self, request: web.Request) -> web.Response:
        return _json(self.leader)
