"""Addresses: where a service listens, and where it tells the registry others can reach it.

One rule for every service (gateway, results, workers): the address registered in Consul is the
service's ``*_ADVERTISE`` setting when there is one, else its listen host — but never a wildcard
(``0.0.0.0``, ``::``), which nobody can dial: then 127.0.0.1, which is only right on one machine.
In containers and on Kubernetes, set ``WORKMESH_GATEWAY_ADVERTISE``, ``WORKMESH_RESULTS_ADVERTISE``
and ``WORKMESH_WORKER_ADVERTISE`` (the image's entrypoint sets them to the container's hostname;
the Kubernetes manifests to the pod IP).
"""

from __future__ import annotations

__all__ = ["WILDCARDS", "advertise_host", "join_host_port", "split_host_port"]

WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})
LOOPBACK = "127.0.0.1"


def split_host_port(address: str) -> tuple[str, int]:
    """``"host:port"`` or ``"[v6]:port"`` -> ``(host, port)`` (the host without brackets).

    Raises:
        ValueError: not ``host:port`` with a port number; the message quotes the address.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{address!r}: must be host:port")
    return host.strip("[]"), int(port)


def join_host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def advertise_host(listen_host: str, advertise: str | None = None) -> str:
    """The host others reach a service at: `advertise` when set, else `listen_host`, else (for a
    wildcard listen address) 127.0.0.1."""
    if advertise and advertise.strip():
        return advertise.strip().strip("[]")
    host = listen_host.strip("[]")
    return LOOPBACK if host in WILDCARDS else host
