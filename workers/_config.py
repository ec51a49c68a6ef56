"""WorkerConfig: how a worker process listens, advertises itself, registers and drains."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from workmesh.registry import RegistryConfig
from workmesh.services.core import env as envvars
from workmesh.services.core.net import advertise_host
from workmesh.services.core.tls import TlsConfig


def default_instance_id() -> str:
    """``<hostname>-<pid>-<random>``, safe inside a Consul service id."""
    host = "".join(c if c.isalnum() or c == "-" else "-" for c in socket.gethostname().lower())[:40] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class WorkerConfig:
    """Settings of one worker process, read once at the edge (:meth:`from_env`).

    Attributes:
        host: the interface to listen on.
        port: the port to listen on; 0 picks a free one.
        advertise: the address others reach this worker at (registered in Consul); defaults
            to `host`, or 127.0.0.1 when listening on all interfaces.
        capacity: overrides the Worker's capacity when set.
        registry: a ``workmesh.registry.RegistryConfig``; ``None`` reads it from the environment
            when registering.
        register: register the workflow types in the registry once serving.
        drain_grace: seconds running jobs get to finish when the worker is asked to stop.
        instance_id: this instance's id (``<hostname>-<pid>-<random>`` by default).
        orphan_timeout: overrides the Worker's: seconds a job whose client went away waits for
            a re-attach before it is cancelled.
        cancel_grace: overrides the Worker's: seconds a cancelled handler gets before it is forced.
        tls: the server's certificate and key (``WORKMESH_TLS_CERT``/``_KEY``; with
            ``WORKMESH_TLS_CLIENT_AUTH`` only clients with a certificate of ``WORKMESH_TLS_CA``,
            i.e. the gateway, may call); its registry check then uses Consul's GRPCUseTLS. With
            ``WORKMESH_TLS_CA``, a handler's ``ctx.step`` reaches the gateway over TLS verified
            against it (for ``WORKMESH_TLS_SERVER_NAME`` when set).
    """

    host: str = "127.0.0.1"
    port: int = 0
    advertise: str | None = None
    capacity: int | None = None
    registry: Any = None
    register: bool = True
    drain_grace: float = 30.0
    instance_id: str = field(default_factory=default_instance_id)
    orphan_timeout: float | None = None
    cancel_grace: float | None = None
    tls: TlsConfig = field(default_factory=TlsConfig)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"worker port must be 0-65535, got {self.port}")
        if self.capacity is not None and self.capacity < 1:
            raise ValueError(f"worker capacity must be ≥ 1, got {self.capacity}")
        if self.drain_grace < 0:
            raise ValueError(f"drain grace must be ≥ 0 seconds, got {self.drain_grace}")
        if self.cancel_grace is not None and self.cancel_grace < 0:
            raise ValueError(f"cancel grace must be ≥ 0 seconds, got {self.cancel_grace}")

    @property
    def advertise_host(self) -> str:
        """The host registered in the registry (never a wildcard address)."""
        return advertise_host(self.host, self.advertise)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> WorkerConfig:
        """Read ``WORKMESH_WORKER_*`` variables (and the registry's ``CONSUL_HTTP_*``).

        Variables: ``WORKMESH_WORKER_HOST``, ``_PORT``, ``_ADVERTISE``, ``_CAPACITY``,
        ``_REGISTER`` (0/false/no/off to skip), ``_DRAIN_GRACE`` (a duration), ``_INSTANCE_ID``,
        ``_ORPHAN_TIMEOUT`` and ``_CANCEL_GRACE`` (durations: seconds, ``90s``, ``5m``...).

        Raises:
            ValueError: a malformed variable; the message names it and the rule.
        Keyword overrides (e.g. from CLI flags) win when not ``None``.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {
            "host": envvars.text(env, "WORKMESH_WORKER_HOST", "127.0.0.1"),
            "port": envvars.integer(env, "WORKMESH_WORKER_PORT", 0, minimum=0, maximum=65535),
            "advertise": envvars.text(env, "WORKMESH_WORKER_ADVERTISE") or None,
            "capacity": envvars.integer(env, "WORKMESH_WORKER_CAPACITY", None, minimum=1),
            "register": envvars.flag(env, "WORKMESH_WORKER_REGISTER", True),
            "drain_grace": envvars.seconds(env, "WORKMESH_WORKER_DRAIN_GRACE", 30.0),
            "orphan_timeout": envvars.seconds(env, "WORKMESH_WORKER_ORPHAN_TIMEOUT", None),
            "cancel_grace": envvars.seconds(env, "WORKMESH_WORKER_CANCEL_GRACE", None),
            "tls": TlsConfig.from_env(env),
        }
        if env.get("WORKMESH_WORKER_INSTANCE_ID"):
            values["instance_id"] = env["WORKMESH_WORKER_INSTANCE_ID"]
        values["registry"] = RegistryConfig.from_env()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes: Any) -> WorkerConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def with_listen(self, listen: str) -> WorkerConfig:
        """A copy listening on ``host:port`` (``[v6]:port`` for IPv6; port 0 picks a free one)."""
        host, sep, port = listen.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"listen address {listen!r} must be host:port")
        return replace(self, host=host.strip("[]") or "0.0.0.0", port=int(port))

    def with_capacity(self, capacity: int) -> WorkerConfig:
        """A copy with the capacity override set."""
        return replace(self, capacity=capacity)
