"""TLS for the gRPC servers and the channels between services, from PEM files.

Every process reads the same variables (``WORKMESH_TLS_*``), each for its own side: a server
with a certificate and key serves TLS; a client with a CA file verifies the servers it calls
against it (and, with a certificate of its own, presents it: mutual TLS where the server asks
for client certificates).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from workmesh.services.core import env as envvars

__all__ = ["TlsConfig", "bind"]


@dataclass(frozen=True)
class TlsConfig:
    """TLS files of one process.

    Attributes:
        cert_file, key_file: this process's certificate chain and private key
            (``WORKMESH_TLS_CERT``/``WORKMESH_TLS_KEY``): its server serves TLS; as a client it
            presents them when a server asks.
        ca_file: the CA that signed the servers this process calls (``WORKMESH_TLS_CA``): its
            channels to other services use TLS and verify against it; also the CA of client
            certificates when `client_auth` is on.
        client_auth: the server requires a client certificate signed by `ca_file`
            (``WORKMESH_TLS_CLIENT_AUTH``; mutual TLS, e.g. workers accepting only the gateway).
        server_name: the name the other services' certificates are verified for instead of the
            host of their address (``WORKMESH_TLS_SERVER_NAME``; containers that register a
            generated hostname no certificate can name); as a server, the ``TLSServerName`` of
            its registry check, so that Consul verifies it for that name too.
    """

    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""
    client_auth: bool = False
    server_name: str = ""

    def __post_init__(self) -> None:
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("WORKMESH_TLS_CERT and WORKMESH_TLS_KEY: set both or neither")
        if self.client_auth and not (self.ca_file and self.cert_file):
            raise ValueError(
                "WORKMESH_TLS_CLIENT_AUTH needs WORKMESH_TLS_CA (the clients' CA) and a server certificate"
            )
        for name, path in (
            ("WORKMESH_TLS_CERT", self.cert_file),
            ("WORKMESH_TLS_KEY", self.key_file),
            ("WORKMESH_TLS_CA", self.ca_file),
        ):
            if path and not Path(path).is_file():
                raise ValueError(f"{name}={path!r}: no such file")

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, cert: str = "", key: str = "", ca: str = ""
    ) -> TlsConfig:
        """Read ``WORKMESH_TLS_CERT``, ``WORKMESH_TLS_KEY``, ``WORKMESH_TLS_CA`` and
        ``WORKMESH_TLS_CLIENT_AUTH`` and ``WORKMESH_TLS_SERVER_NAME``; `cert`/`key`/`ca` (command-line flags) win.

        Raises:
            ValueError: a missing file or an incomplete pair; the message names the variable.
        """
        env = os.environ if env is None else env
        return cls(
            cert_file=cert or envvars.text(env, "WORKMESH_TLS_CERT"),
            key_file=key or envvars.text(env, "WORKMESH_TLS_KEY"),
            ca_file=ca or envvars.text(env, "WORKMESH_TLS_CA"),
            client_auth=envvars.flag(env, "WORKMESH_TLS_CLIENT_AUTH", False),
            server_name=envvars.text(env, "WORKMESH_TLS_SERVER_NAME"),
        )

    @property
    def serves_tls(self) -> bool:
        return bool(self.cert_file)

    @property
    def calls_tls(self) -> bool:
        """Channels to other services use TLS (a CA to verify them is set)."""
        return bool(self.ca_file)

    def server_credentials(self) -> grpc.ServerCredentials:
        pair = (_read(self.key_file), _read(self.cert_file))
        roots = _read(self.ca_file) if self.client_auth else None
        return grpc.ssl_server_credentials([pair], root_certificates=roots, require_client_auth=self.client_auth)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Credentials of a channel to another service (verifying it against `ca_file`)."""
        if not self.ca_file:
            raise ValueError("channel_credentials: no CA file (WORKMESH_TLS_CA) to verify servers with")
        if self.cert_file:
            return grpc.ssl_channel_credentials(_read(self.ca_file), _read(self.key_file), _read(self.cert_file))
        return grpc.ssl_channel_credentials(_read(self.ca_file))

    def aio_channel(self, target: str, options: Sequence[tuple] = (), interceptors=None) -> grpc.aio.Channel:
        """A grpc.aio channel to another service: TLS when `ca_file` is set, else plaintext."""
        if self.calls_tls:
            if self.server_name:
                options = (*options, ("grpc.ssl_target_name_override", self.server_name))
            return grpc.aio.secure_channel(
                target, self.channel_credentials(), options=options, interceptors=interceptors
            )
        return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def bind(server, address: str, tls: TlsConfig | None) -> int:
    """Add a listening port to a gRPC server: TLS when `tls` has a certificate. Returns the
    port (0 when it cannot bind)."""
    if tls is not None and tls.serves_tls:
        return server.add_secure_port(address, tls.server_credentials())
    return server.add_insecure_port(address)
