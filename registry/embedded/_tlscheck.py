"""The channel of a GRPC check with ``GRPCUseTLS``, with Consul's semantics.

Consul verifies the instance's certificate against the agent's CA (here: the registry's CA file,
else the system's), for the name ``TLSServerName`` or the check's host. With ``TLSSkipVerify``
it does not verify at all. gRPC's Python API cannot switch verification off, so the check
fetches the certificate the instance presents and trusts exactly that one for this channel,
for the name it carries: the same effect — any certificate is accepted, the traffic is still
encrypted.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.x509.oid import NameOID

from workmesh.registry.embedded._decode import CheckDef

__all__ = ["tls_channel"]


def _name_in(pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(pem)
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = names.get_values_for_type(x509.DNSName)
        if dns:
            return dns[0]
        ips = names.get_values_for_type(x509.IPAddress)
        if ips:
            return str(ips[0])
    except x509.ExtensionNotFound:
        pass
    common = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(common[0].value) if common else ""


async def tls_channel(target: str, cdef: CheckDef, ca_file: str, timeout: float) -> grpc.aio.Channel:
    """A TLS channel to `target` (``host:port``) as the check `cdef` asks for.

    Raises:
        OSError: with TLSSkipVerify, the instance's certificate could not be fetched.
    """
    options: list[tuple[str, str]] = []
    if cdef.tls_skip_verify:
        host, _, port = target.rpartition(":")
        pem = (
            await asyncio.to_thread(ssl.get_server_certificate, (host.strip("[]"), int(port)), timeout=timeout)
        ).encode()
        credentials = grpc.ssl_channel_credentials(pem)
        name = cdef.tls_server_name or _name_in(pem)
    else:
        roots = Path(ca_file).read_bytes() if ca_file else None
        credentials = grpc.ssl_channel_credentials(roots)
        name = cdef.tls_server_name
    if name:
        options.append(("grpc.ssl_target_name_override", name))
    return grpc.aio.secure_channel(target, credentials, options=options)
