"""The settings of a benchmark mesh with authentication and TLS on: certificates of a throwaway
CA, a random HS256 secret and series key, and a JWT for the benchmark's client."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import jwt

from workmesh.services.core.pki import CA

SCOPES = "types:read jobs:submit jobs:read"


@dataclass(frozen=True)
class SecureMesh:
    """What a :class:`~workmesh.services.devmesh.DevMesh` and its client need for auth + TLS.

    Attributes:
        env: ``WORKMESH_TLS_*`` (every process serves TLS with one certificate for 127.0.0.1
            and verifies the others against the CA), ``WORKMESH_AUTH=on``, the JWT secret and
            the series key.
        token: an HS256 JWT with the scopes the dispatch benchmark uses, valid for a day.
        ca_file: the CA the client verifies the gateway with.
    """

    env: dict[str, str] = field(repr=False)
    token: str = field(repr=False)
    ca_file: str


def secure_mesh(directory: Path) -> SecureMesh:
    """Make the certificates in `directory` and the keys; nothing leaves the machine."""
    ca = CA(directory)
    pair = ca.issue("workmesh-bench")
    secret, series_key = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = int(time.time())
    claims = {"sub": "bench", "tenant": "bench", "scope": SCOPES, "iat": now, "exp": now + 24 * 3600}
    env = {
        "WORKMESH_TLS_CERT": str(pair.cert),
        "WORKMESH_TLS_KEY": str(pair.key),
        "WORKMESH_TLS_CA": str(ca.pem),
        "WORKMESH_AUTH": "on",
        "WORKMESH_JWT_SECRET": secret,
        "WORKMESH_SERIES_KEY": series_key,
    }
    return SecureMesh(env=env, token=jwt.encode(claims, secret, algorithm="HS256"), ca_file=str(ca.pem))
