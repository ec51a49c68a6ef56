"""Query parameters of the embedded registry: each endpoint takes the ones it implements.

Consul ignores query parameters it does not know. The embedded registry refuses (400 naming
the parameter) every one it does not implement, known to Consul or not, because ignoring one
hands back something else than what was asked for: ``?dc=other`` would answer this
datacenter's data, ``?peer=x`` the local catalog, ``?filter=`` everything. A ``dc`` other than
its own gets Consul's own answer, 500 "No path to datacenter".
"""

from __future__ import annotations

from aiohttp import web

from workmesh.registry.embedded._decode import BadRequest
from workmesh.registry.embedded._state import DATACENTER

# Every endpoint: `token` (there are no ACLs here; it is the X-Consul-Token header's equal) and
# `pretty` (indented JSON).
ANY = frozenset({"token", "pretty"})
# Catalog and health reads: one node, so every consistency mode reads the same data.
READ = frozenset({"dc", "stale", "consistent", "cached"})
BLOCKING = frozenset({"index", "wait"})
# Agent endpoints answer for the local agent whatever `dc` says, in Consul as here.
AGENT = frozenset({"dc"})

_WHY = {
    "filter": "filter on the client or use ?tag=",
    "peer": "it has no cluster peers",
    "near": "it has one node, so there is nothing to sort by distance",
    "node-meta": "filter on the client",
    "ns": "namespaces are a Consul Enterprise feature",
    "partition": "admin partitions are a Consul Enterprise feature",
}


class NoPathToDatacenter(Exception):
    """``?dc=`` names a datacenter other than the registry's own (Consul answers 500)."""


def check_query(request: web.Request, allowed: frozenset[str]) -> None:
    """Refuse query parameters outside `allowed` and, where `allowed` has the catalog's
    :data:`READ` set, datacenters other than this one.

    Raises:
        BadRequest: a parameter the endpoint does not implement; the reason names it.
        NoPathToDatacenter: an endpoint that honours ``dc`` was asked for another one.
    """
    for name in request.query:
        if name not in allowed:
            why = _WHY.get(name, "it does not implement it")
            raise BadRequest(f"The {name} parameter is not supported by the embedded registry ({why})")
    if allowed >= READ and (request.query.get("dc") or DATACENTER) != DATACENTER:
        raise NoPathToDatacenter()
