"""The HTTP client shared by Registrar, ServiceWatch and find_service.

We use py-consul's asyncio client (``consul.aio.Consul``): it works with aiohttp 3.14 (its
connector only triggers aiohttp deprecation warnings for ``verify_ssl``/``ssl_context``, which
we silence where the client is built), it speaks the documented API including blocking
queries (``index``/``wait``) and returns the ``X-Consul-Index`` with the data.
"""

from __future__ import annotations

import random
import warnings

import consul
import consul.aio

from workmesh.registry.client._config import RegistryConfig

ConsulError = consul.ConsulException
"""Every error py-consul raises for a non-2xx answer."""


def open_client(config: RegistryConfig, timeout: float) -> consul.aio.Consul:
    """A py-consul asyncio client for `config`; every request is bounded by `timeout` seconds.

    Must be called inside a running event loop; close it with ``await client.close()``.
    """
    with warnings.catch_warnings():
        # aiohttp >= 3.10 deprecates the connector arguments py-consul 1.8 passes; harmless.
        warnings.simplefilter("ignore", DeprecationWarning)
        client = consul.aio.Consul(
            host=config.host,
            port=config.port,
            scheme=config.scheme,
            token=config.token,
            verify=config.scheme == "https",
            connections_timeout=timeout,
        )
    # py-consul lets CONSUL_HTTP_TOKEN override the token argument; the config read at the
    # edge is the one source of truth here.
    client.token = config.token
    return client


def next_index(previous: int, returned: int) -> int:
    """The index for the next blocking query, following Consul's rules.

    Reset to 0 (a non-blocking read) when the index went backwards — e.g. the registry
    restarted — and never block on an index below 1.
    """
    if returned < previous:
        return 0
    return max(returned, 1)


class Backoff:
    """Exponential backoff with jitter between ``first`` and ``limit`` seconds."""

    def __init__(self, first: float = 0.1, limit: float = 2.0) -> None:
        self.first, self.limit = first, limit
        self._next = first

    def reset(self) -> None:
        self._next = self.first

    def delay(self) -> float:
        """The next delay; each call doubles the following one up to the limit."""
        current = self._next
        self._next = min(self._next * 2, self.limit)
        return current * random.uniform(0.8, 1.2)
