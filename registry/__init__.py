"""Everything registry: Consul client side and the embedded Consul-API registry.

Client side (works against a real Consul or the embedded registry alike):
:class:`Registrar` keeps an instance's registrations alive, :class:`ServiceWatch` keeps a
last-good view of the passing instances of tagged services, :func:`find_service` is a one-shot
lookup. :class:`EmbeddedRegistry` / :func:`run_embedded_registry` serve the subset of Consul's
HTTP API workmesh uses.

The client side talks HTTP through py-consul's asyncio client (``consul.aio``) on aiohttp;
configuration comes from ``CONSUL_HTTP_ADDR`` / ``CONSUL_HTTP_TOKEN`` via
:meth:`RegistryConfig.from_env`.
"""

from workmesh.registry.client._config import RegistryConfig
from workmesh.registry.client._model import WORKFLOW_TAG, Instance, ServiceRegistration, service_name
from workmesh.registry.client._registrar import Registrar
from workmesh.registry.client._watch import ServiceWatch, find_service
from workmesh.registry.embedded._server import EmbeddedRegistry, run_embedded_registry

__all__ = [
    "WORKFLOW_TAG",
    "EmbeddedRegistry",
    "Instance",
    "Registrar",
    "RegistryConfig",
    "ServiceRegistration",
    "ServiceWatch",
    "find_service",
    "run_embedded_registry",
    "service_name",
]
