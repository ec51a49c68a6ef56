"""From an ``authorization: Bearer ...`` header to an :class:`Identity`: JWT or API token, with a
bounded cache of verified JWTs so that a caller's repeated calls cost a dictionary look-up."""

from __future__ import annotations

import time
from collections import OrderedDict

from workmesh.services.core.auth._config import AuthConfig
from workmesh.services.core.auth._identity import Identity
from workmesh.services.core.auth._jwt import JwtVerifier
from workmesh.services.core.auth._tokens import ApiTokenVerifier, TokenStore, is_api_token
from workmesh.services.core.errors import Unauthenticated

__all__ = ["Authenticator", "bearer"]

_MAX_TOKEN_BYTES = 16 * 1024  # a JWT with many claims is a few KiB; more is not a token


def bearer(authorization: str | None) -> str:
    """The token of an ``authorization`` header value ``Bearer <token>``.

    Raises:
        Unauthenticated: no header, another scheme, or an empty or oversized token.
    """
    if not authorization:
        raise Unauthenticated("missing credentials: send the metadata 'authorization: Bearer <token>'")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthenticated("the authorization metadata must use the Bearer scheme")
    token = token.strip()
    if not token:
        raise Unauthenticated("the bearer token is empty")
    if len(token) > _MAX_TOKEN_BYTES:
        raise Unauthenticated(f"the bearer token is longer than {_MAX_TOKEN_BYTES} bytes")
    return token


class Authenticator:
    """Authenticates callers by bearer token.

    Args:
        config: what is accepted.
        tokens: the API token store; None: API tokens are refused (e.g. a service without the
            job store).
        max_cached: verified JWTs kept (least recently used dropped first); each is trusted
            until its own ``exp``, never longer.
    """

    def __init__(self, config: AuthConfig, tokens: TokenStore | None = None, *, max_cached: int = 10_000) -> None:
        self._jwt = JwtVerifier(config.jwt) if config.jwt.enabled else None
        self._tokens = (
            ApiTokenVerifier(tokens, cache_seconds=config.token_cache_seconds) if tokens is not None else None
        )
        self._cache: OrderedDict[str, tuple[Identity, float]] = OrderedDict()
        self._max = max_cached

    async def authenticate(self, authorization: str | None) -> Identity:
        """The caller of an ``authorization`` header value.

        Raises:
            Unauthenticated: with the reason (never the token).
            Unavailable: the JWKS endpoint cannot be reached.
        """
        token = bearer(authorization)
        if is_api_token(token):
            if self._tokens is None:
                raise Unauthenticated("API tokens are not accepted by this service; use a JWT")
            return await self._tokens.verify(token)
        cached = self._cache.get(token)
        if cached is not None:
            if time.time() < cached[1]:
                self._cache.move_to_end(token)
                return cached[0]
            del self._cache[token]
        if self._jwt is None:
            raise Unauthenticated(
                "JWTs are not accepted (no WORKMESH_JWT_SECRET, WORKMESH_JWKS_URL or "
                "WORKMESH_JWKS_FILE is set); use an API token"
            )
        identity, exp = await self._jwt.verify(token)
        if isinstance(exp, (int, float)):
            self._cache[token] = (identity, float(exp))
            if len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return identity
