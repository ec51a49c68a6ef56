"""Signing keys and tokens for the auth tests: real RSA/EC keys made with `cryptography`, JWTs
signed with PyJWT, JWKS documents as an OIDC provider publishes them."""

from __future__ import annotations

import json
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

SECRET = "s" * 40  # HS256 test secret (≥ 32 characters, as the config demands)


class KeyPair:
    """A private key with its key id and the public JWK of it."""

    def __init__(self, kid: str, alg: str) -> None:
        self.kid, self.alg = kid, alg
        if alg.startswith("RS"):
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            jwk = json.loads(ECAlgorithm.to_jwk(self.private.public_key()))
        self.jwk = {**jwk, "kid": kid, "alg": alg, "use": "sig"}

    def sign(self, claims: dict, **headers) -> str:
        return jwt.encode(claims, self.private, algorithm=self.alg, headers={"kid": self.kid, **headers})


def jwks(*pairs: KeyPair) -> dict:
    return {"keys": [p.jwk for p in pairs]}


# Four hours: the callers' tables are made when their modules are imported, and a full test run
# (collection first) reaches the last of them well after the five minutes this once was.
TTL = 4 * 3600


def claims(
    sub: str = "alice", tenant: str = "acme", scope: str = "types:read jobs:read jobs:submit", ttl: float = TTL, **extra
) -> dict:
    now = int(time.time())
    return {"sub": sub, "tenant": tenant, "scope": scope, "iat": now, "exp": now + int(ttl), **extra}


def hs256(**kw) -> str:
    return jwt.encode(claims(**kw), SECRET, algorithm="HS256")
