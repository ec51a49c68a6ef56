"""JWT bearer tokens verified with PyJWT: HS256 with a shared secret, RS256/ES256 against a JWKS
(a file, or a URL fetched with PyJWT's JWKS client), issuer/audience checks, a small leeway, and
configurable claim names — so the tokens of Keycloak or any OIDC provider work unchanged.

Every failure is :class:`~workmesh.services.core.errors.Unauthenticated` with a fixed reason
chosen here ("token expired", "unknown key id", ...): PyJWT's own messages are not passed on, so
no part of a token can reach an error message or a log.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

from workmesh.services.core.auth._identity import Identity
from workmesh.services.core.errors import Unauthenticated, Unavailable

__all__ = ["JwtConfig", "JwtVerifier"]

_HMAC = ("HS256", "HS384", "HS512")


@dataclass(frozen=True)
class JwtConfig:
    """How JWTs are verified and read.

    Attributes:
        secret: HS256 shared secret (``WORKMESH_JWT_SECRET``); empty: no HS256.
        jwks_url: a JWKS endpoint (``WORKMESH_JWKS_URL``, e.g. Keycloak's
            ``.../protocol/openid-connect/certs``), fetched and cached by PyJWT's JWKS client.
        jwks_file: a JWKS JSON file (``WORKMESH_JWKS_FILE``), read once at start-up.
        algorithms: asymmetric algorithms accepted from the JWKS (``WORKMESH_JWT_ALGORITHMS``).
        issuer: required ``iss`` (``WORKMESH_JWT_ISSUER``); empty: not checked.
        audience: required ``aud`` (``WORKMESH_JWT_AUDIENCE``); empty: not checked.
        leeway: seconds of clock skew allowed on ``exp``/``nbf``/``iat`` (``WORKMESH_JWT_LEEWAY``).
        subject_claim, tenant_claim, scopes_claim, groups_claim: claim names; a dotted name
            reads a nested claim (``realm_access.roles`` for Keycloak's realm roles). Scopes and
            groups may be a list or a space- or comma-separated string (OAuth's ``scope``).
        default_tenant: the tenant of a token without the tenant claim (a single-tenant
            provider); empty: such a token is refused.
    """

    secret: str = field(default="", repr=False)
    jwks_url: str = ""
    jwks_file: str = ""
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    issuer: str = ""
    audience: str = ""
    leeway: float = 10.0
    subject_claim: str = "sub"
    tenant_claim: str = "tenant"
    scopes_claim: str = "scope"
    groups_claim: str = "groups"
    default_tenant: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.secret or self.jwks_url or self.jwks_file)


def _claim(claims: Mapping[str, Any], name: str) -> Any:
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _names(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(v for v in value.replace(",", " ").split() if v)
    if isinstance(value, (list, tuple)):
        return frozenset(str(v) for v in value if isinstance(v, (str, int)))
    return frozenset()


class JwtVerifier:
    """Verifies a JWT and turns its claims into an :class:`Identity`.

    Args:
        config: what to accept.
    """

    def __init__(self, config: JwtConfig) -> None:
        self._config = config
        self._keys: dict[str, jwt.PyJWK] = {}
        self._client: jwt.PyJWKClient | None = None
        if config.jwks_file:
            with open(config.jwks_file, encoding="utf-8") as f:
                data = json.load(f)
            # Keys without a usable algorithm (e.g. an encryption key) are left out by PyJWT.
            for key in jwt.PyJWKSet.from_dict(data).keys:
                if key.key_id:
                    self._keys[key.key_id] = key
        if config.jwks_url:
            # cooldown: an unknown key id refetches the set at most every 30 s, so a flood of
            # tokens with made-up key ids does not become a flood of requests to the provider.
            self._client = jwt.PyJWKClient(
                config.jwks_url, cache_jwk_set=True, lifespan=300, timeout=5, cooldown_duration=30
            )
        self._asymmetric = tuple(a for a in config.algorithms if a not in _HMAC)
        self._allowed = (("HS256",) if config.secret else ()) + (
            self._asymmetric if (config.jwks_url or config.jwks_file) else ()
        )

    async def verify(self, token: str) -> tuple[Identity, float | None]:
        """The caller a token stands for, and the token's expiry (epoch seconds).

        Raises:
            Unauthenticated: the token does not verify; the message says why.
            Unavailable: the JWKS endpoint cannot be reached.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("malformed token: not a JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._allowed:
            raise Unauthenticated(f"token algorithm not accepted (accepted: {', '.join(self._allowed)})")
        key = self._config.secret if alg in _HMAC else await self._signing_key(header)
        c = self._config
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=c.audience or None,
                issuer=c.issuer or None,
                leeway=c.leeway,
                options={"require": ["exp"], "verify_aud": bool(c.audience), "verify_iss": bool(c.issuer)},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("token not yet valid (nbf or iat in the future)") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(f"token audience is not {c.audience!r}") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated(f"token issuer is not {c.issuer!r}") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("token signature does not verify") from None
        except jwt.InvalidAlgorithmError:
            raise Unauthenticated("token algorithm does not match its key's") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"token has no {exc.claim!r} claim") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"token rejected ({type(exc).__name__})") from None
        return self._identity(claims), claims.get("exp")

    async def _signing_key(self, header: Mapping[str, Any]) -> Any:
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("token has no key id (kid) to find its key in the JWKS")
        key = self._keys.get(kid)
        if key is None and self._client is not None:
            try:
                # PyJWT's client is blocking (urllib); the fetch runs off the event loop, and
                # only when the key id is not cached.
                key = await asyncio.to_thread(self._client.get_signing_key, kid)
            except jwt.PyJWKClientConnectionError:
                raise Unavailable("the JWKS endpoint cannot be reached to verify the token") from None
            except jwt.PyJWKClientError:
                key = None
        if key is None:
            raise Unauthenticated("unknown key id: no key in the JWKS has the token's kid")
        return key

    def _identity(self, claims: Mapping[str, Any]) -> Identity:
        c = self._config
        subject = _claim(claims, c.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise Unauthenticated(f"token has no {c.subject_claim!r} claim")
        tenant = _claim(claims, c.tenant_claim)
        if tenant is None or tenant == "":
            if not c.default_tenant:
                raise Unauthenticated(f"token has no {c.tenant_claim!r} claim (and no default tenant is set)")
            tenant = c.default_tenant
        if not isinstance(tenant, str):
            raise Unauthenticated(f"token's {c.tenant_claim!r} claim is not a string")
        return Identity(
            tenant=tenant,
            subject=subject,
            scopes=_names(_claim(claims, c.scopes_claim)),
            groups=_names(_claim(claims, c.groups_claim)),
            via="jwt",
        )
