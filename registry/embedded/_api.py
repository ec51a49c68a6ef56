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

from workmesh.registry.embedded._decode import (
    BadRequest,
    decode_check_registration,
    decode_check_update,
    decode_service,
)
from workmesh.registry.embedded._params import AGENT, ANY, BLOCKING, READ, NoPathToDatacenter, check_query
from workmesh.registry.embedded._state import CRITICAL, DATACENTER, PASSING, WARNING, RegistryState
from workmesh.services.core.durations import parse_go_duration

# The Consul version whose HTTP API the embedded registry follows (for tools that parse
# /v1/agent/self); VersionMetadata says it is not Consul.
CONSUL_API_VERSION = "1.20.0"

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
        response = await handler(request)
    except BadRequest as exc:
        return _text(400, str(exc))
    except NoPathToDatacenter:
        return _text(500, "No path to datacenter")  # Consul's answer, status included
    if (
        "pretty" in request.query
        and isinstance(response, web.Response)
        and response.content_type == "application/json"
        and isinstance(response.body, bytes | bytearray)
        and response.body
    ):
        response.body = json.dumps(json.loads(response.body), indent=4).encode()
    return response


def _unknown(kind: str, ident: str) -> web.Response:
    return _text(404, f'Unknown {kind} ID "{ident}". Ensure that the {kind} ID is passed, not the {kind} name.')


def _only(handler: Handler, allowed: frozenset[str]) -> Handler:
    async def checked(request: web.Request) -> web.StreamResponse:
        check_query(request, allowed)
        return await handler(request)

    return checked


def _blocking_params(request: web.Request) -> tuple[int, float]:
    raw_index = request.query.get("index", "")
    try:
        index = int(raw_index) if raw_index else 0
        if index < 0:
            raise ValueError
    except ValueError:
        raise BadRequest(f"Invalid index: {raw_index!r}") from None
    raw_wait = request.query.get("wait", "")
    try:
        wait = parse_go_duration(raw_wait) if raw_wait else DEFAULT_WAIT
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
        app = web.Application(middlewares=[_errors, self._fresh])
        agent, read = ANY | AGENT, ANY | READ | BLOCKING

        def put(path: str, handler: Handler, *params: str, allowed: frozenset[str] = agent) -> None:
            app.router.add_put(path, _only(handler, allowed | frozenset(params)))

        def get(path: str, handler: Handler, *params: str, allowed: frozenset[str] = read) -> None:
            app.router.add_get(path, _only(handler, allowed | frozenset(params)))

        put("/v1/agent/service/register", self.register, "replace-existing-checks")
        put("/v1/agent/service/deregister/{service_id}", self.deregister)
        get("/v1/agent/services", self.agent_services, allowed=agent)
        get("/v1/agent/checks", self.agent_checks, allowed=agent)
        get("/v1/agent/self", self.agent_self, allowed=agent)
        put("/v1/agent/check/register", self.check_register)
        put("/v1/agent/check/deregister/{check_id}", self.check_deregister)
        for verb in ("pass", "warn", "fail"):
            put(f"/v1/agent/check/{verb}/{{check_id}}", self.check_verb, "note")
        put("/v1/agent/check/update/{check_id}", self.check_update)
        get("/v1/catalog/services", self.catalog_services)
        get("/v1/catalog/service/{name}", self.catalog_service, "tag")
        get("/v1/health/service/{name}", self.health_service, "tag", "passing")
        get("/v1/health/checks/{name}", self.health_checks)
        get("/v1/status/leader", self.status_leader, allowed=ANY)
        get("/v1/status/peers", self.status_peers, allowed=ANY)
        return app

    @web.middleware
    async def _fresh(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        # Expire due TTLs before answering, so no read shows a TTL check alive past its
        # deadline even if the expiry timer has not run yet.
        self.state.expire_ttls()
        return await handler(request)

    async def _blocking(
        self, request: web.Request, index_of: Callable[[], int], render: Callable[[], Any]
    ) -> web.Response:
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
        return _text(200, "") if self.state.deregister(service_id) else _unknown("service", service_id)

    async def agent_services(self, request: web.Request) -> web.Response:
        return _json(self.state.agent_services())

    async def agent_checks(self, request: web.Request) -> web.Response:
        return _json(self.state.agent_checks())

    async def agent_self(self, request: web.Request) -> web.Response:
        state = self.state
        build = {
            "version": CONSUL_API_VERSION,
            "version_metadata": "workmesh-embedded",
            "prerelease": "",
            "revision": "",
        }
        return _json(
            {
                "Config": {
                    "Datacenter": DATACENTER,
                    "PrimaryDatacenter": DATACENTER,
                    "NodeName": state.node_name,
                    "NodeID": state.node_id,
                    "Server": True,
                    "Version": CONSUL_API_VERSION,
                    "VersionPrerelease": "",
                    "VersionMetadata": "workmesh-embedded",
                    "Revision": "",
                },
                "Member": {
                    "Name": state.node_name,
                    "Addr": state.node_address,
                    "Port": 8301,
                    "Status": 1,
                    "Tags": {"dc": DATACENTER, "role": "consul", "build": f"{CONSUL_API_VERSION}+workmesh-embedded"},
                },
                "Stats": {
                    "consul": {
                        "leader": "true",
                        "leader_addr": self.leader,
                        "server": "true",
                        "bootstrap": "true",
                        "known_datacenters": "1",
                    },
                    "agent": {
                        "check_ttls": str(sum(c.kind == "ttl" for c in state.checks.values())),
                        "check_monitors": "0",
                    },
                    "build": build,
                },
                "Meta": {},
            }
        )

    async def check_register(self, request: web.Request) -> web.Response:
        cdef, service_id = decode_check_registration(await request.read())
        try:
            self.state.register_check(cdef, service_id)
        except KeyError:
            return _text(404, f'ServiceID "{service_id}" does not exist')
        return _text(200, "")

    async def check_deregister(self, request: web.Request) -> web.Response:
        check_id = request.match_info["check_id"]
        return _text(200, "") if self.state.deregister_check(check_id) else _unknown("check", check_id)

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
            return _unknown("check", check_id)
        except ValueError as exc:
            return _text(500, str(exc))  # Consul answers 500 here too
        return _text(200, "")

    # -- catalog / health -------------------------------------------------------------------
    async def catalog_services(self, request: web.Request) -> web.Response:
        return await self._blocking(request, self.state.services_index, self.state.catalog_services)

    async def catalog_service(self, request: web.Request) -> web.Response:
        name, tags = request.match_info["name"], request.query.getall("tag", [])
        return await self._blocking(
            request, lambda: self.state.name_index(name), lambda: self.state.catalog_service(name, tags)
        )

    async def health_service(self, request: web.Request) -> web.Response:
        name, tags = request.match_info["name"], request.query.getall("tag", [])
        passing = _flag(request, "passing")
        return await self._blocking(
            request,
            lambda: self.state.name_index(name),
            lambda: self.state.health_service(name, passing=passing, tags=tags),
        )

    async def health_checks(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        return await self._blocking(
            request, lambda: self.state.name_index(name), lambda: self.state.health_checks(name)
        )

    async def status_leader(self, request: web.Request) -> web.Response:
        return _json(self.leader)

    async def status_peers(self, request: web.Request) -> web.Response:
        return _json([self.leader])  # the one node is the whole Raft cluster
