"""Where the registry is: read once from the environment, as Consul's own tools read it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from workmesh.services.core import env as envvars


@dataclass(frozen=True)
class RegistryConfig:
    """Address of a Consul agent (or the embedded registry) and how to talk to it.

    Attributes:
        address: ``host:port`` of the agent's HTTP API.
        token: ACL token sent as ``X-Consul-Token``, or None.
        scheme: ``http`` or ``https``.
    """

    address: str = "127.0.0.1:8500"
    token: str | None = None
    scheme: str = "http"

    def __post_init__(self) -> None:
        if self.scheme not in ("http", "https"):
            raise ValueError(f"RegistryConfig.scheme: must be 'http' or 'https', got {self.scheme!r}")
        host, _, port = self.address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"RegistryConfig.address: must be host:port, got {self.address!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RegistryConfig:
        """Read ``CONSUL_HTTP_ADDR`` (``host:port``, optionally with ``http://``/``https://``),
        ``CONSUL_HTTP_TOKEN`` and ``CONSUL_HTTP_SSL``, with Consul's defaults.

        Raises:
            ValueError: ``CONSUL_HTTP_ADDR`` is not ``[scheme://]host:port``, or ``CONSUL_HTTP_SSL``
                not a boolean.
        """
        env = os.environ if environ is None else environ
        raw = envvars.text(env, "CONSUL_HTTP_ADDR", "127.0.0.1:8500")
        scheme = "https" if envvars.flag(env, "CONSUL_HTTP_SSL", False) else "http"
        if "://" in raw:
            scheme, raw = raw.split("://", 1)
            scheme = scheme.lower()
        raw = raw.rstrip("/")
        try:
            return cls(address=raw, token=env.get("CONSUL_HTTP_TOKEN") or None, scheme=scheme)
        except ValueError as exc:
            raise ValueError(f"CONSUL_HTTP_ADDR={env.get('CONSUL_HTTP_ADDR')!r}: {exc}") from exc

    @property
    def host(self) -> str:
        return self.address.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])

    @property
    def url(self) -> str:
        """Base URL of the HTTP API, e.g. ``http://127.0.0.1:8500``."""
        return f"{self.scheme}://{self.address}"
