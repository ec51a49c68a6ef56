"""The gateway's HTTP/JSON API and web console (served on its own port, e.g. 8080).

The gRPC API mapped to HTTP as ``google.api.http`` rules would map it, served by calling the
same :class:`~workmesh.services.gateway._servicer.GatewayServicer` in-process; Server-Sent Events for the
streams; series through the results client; an OpenAPI 3 document at ``/v1/openapi.json``; the
console (static files in this package) at ``/``.
"""

from workmesh.services.gateway.http._app import HttpConfig, HttpServer, create_app, parse_address
from workmesh.services.gateway.http._calls import CallError
from workmesh.services.gateway.http._openapi import document

__all__ = ["CallError", "HttpConfig", "HttpServer", "create_app", "document", "parse_address"]
