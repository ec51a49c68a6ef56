"""Authentication settings, read once from the environment at process start."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from workmesh.services.core import env as envvars
from workmesh.services.core.auth._capability import SeriesCapabilities
from workmesh.services.core.auth._jwt import JwtConfig

__all__ = ["AuthConfig", "announce"]


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    return envvars.seconds(env, name, default, minimum=0, maximum=3600)


@dataclass(frozen=True)
class AuthConfig:
    """Whether and how callers are authenticated.

    Attributes:
        enabled: ``WORKMESH_AUTH=on``; off by default (every caller may do everything, and the
            services say so at start-up).
        jwt: JWT verification (see :class:`JwtConfig` for its variables).
        token_cache_seconds: how long a verified API token is trusted before its record is read
            again (``WORKMESH_TOKEN_CACHE_SECONDS``, default 5): a revoked token stops working
            within this time.
        series_key: the key the gateway signs series write capabilities with and the results
            service checks them with (``WORKMESH_SERIES_KEY``, at least 32 characters, not the
            JWT secret); both need it when authentication is on.
        series_token_ttl: lifetime of the write capability of a job without a timeout
            (``WORKMESH_SERIES_TOKEN_TTL``, default 24 h); with a timeout, the timeout plus 5 min.
    """

    enabled: bool = False
    jwt: JwtConfig = field(default_factory=JwtConfig)
    token_cache_seconds: float = 5.0
    series_key: str = field(default="", repr=False)
    series_token_ttl: float = 24 * 3600.0

    def capabilities(self) -> SeriesCapabilities | None:
        """The series capabilities; None with authentication off or without a key. Their expiry
        allows the JWTs' clock skew (``WORKMESH_JWT_LEEWAY``)."""
        if not self.enabled or not self.series_key:
            return None
        return SeriesCapabilities(self.series_key, ttl=self.series_token_ttl, leeway=self.jwt.leeway)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AuthConfig:
        """Read ``WORKMESH_AUTH``, ``WORKMESH_JWT_SECRET``, ``WORKMESH_JWKS_URL``,
        ``WORKMESH_JWKS_FILE``, ``WORKMESH_JWT_ALGORITHMS``, ``WORKMESH_JWT_ISSUER``,
        ``WORKMESH_JWT_AUDIENCE``, ``WORKMESH_JWT_LEEWAY``, ``WORKMESH_JWT_SUBJECT_CLAIM``,
        ``WORKMESH_JWT_TENANT_CLAIM``, ``WORKMESH_JWT_SCOPES_CLAIM``, ``WORKMESH_JWT_GROUPS_CLAIM``,
        ``WORKMESH_JWT_DEFAULT_TENANT``, ``WORKMESH_TOKEN_CACHE_SECONDS``, ``WORKMESH_SERIES_KEY``
        and ``WORKMESH_SERIES_TOKEN_TTL``.

        Raises:
            ValueError: a malformed variable; the message names it.
        """
        env = os.environ if env is None else env
        d = JwtConfig()
        algorithms = tuple(a.strip() for a in envvars.text(env, "WORKMESH_JWT_ALGORITHMS").split(",") if a.strip())
        for alg in algorithms:
            if alg not in ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"):
                raise ValueError(
                    f"WORKMESH_JWT_ALGORITHMS={alg!r}: not an asymmetric JWS algorithm "
                    f"(HS256 is used when WORKMESH_JWT_SECRET is set)"
                )
        jwt = JwtConfig(
            secret=envvars.text(env, "WORKMESH_JWT_SECRET"),
            jwks_url=envvars.text(env, "WORKMESH_JWKS_URL"),
            jwks_file=envvars.text(env, "WORKMESH_JWKS_FILE"),
            algorithms=algorithms or d.algorithms,
            issuer=envvars.text(env, "WORKMESH_JWT_ISSUER"),
            audience=envvars.text(env, "WORKMESH_JWT_AUDIENCE"),
            leeway=_seconds(env, "WORKMESH_JWT_LEEWAY", d.leeway),
            subject_claim=envvars.text(env, "WORKMESH_JWT_SUBJECT_CLAIM", d.subject_claim),
            tenant_claim=envvars.text(env, "WORKMESH_JWT_TENANT_CLAIM", d.tenant_claim),
            scopes_claim=envvars.text(env, "WORKMESH_JWT_SCOPES_CLAIM", d.scopes_claim),
            groups_claim=envvars.text(env, "WORKMESH_JWT_GROUPS_CLAIM", d.groups_claim),
            default_tenant=envvars.text(env, "WORKMESH_JWT_DEFAULT_TENANT"),
        )
        if jwt.secret and len(jwt.secret) < 32:
            raise ValueError(
                "WORKMESH_JWT_SECRET: must be at least 32 characters (RFC 7518 asks for a key "
                "as long as the hash, 256 bits for HS256)"
            )
        series_key = envvars.text(env, "WORKMESH_SERIES_KEY")
        if series_key and len(series_key) < 32:
            raise ValueError("WORKMESH_SERIES_KEY: must be at least 32 characters (256 bits for HS256)")
        if series_key and series_key == jwt.secret:
            raise ValueError(
                "WORKMESH_SERIES_KEY: must differ from WORKMESH_JWT_SECRET (a write capability must "
                "never pass for a user token, nor the other way round)"
            )
        return cls(
            enabled=envvars.flag(env, "WORKMESH_AUTH", False),
            jwt=jwt,
            token_cache_seconds=_seconds(env, "WORKMESH_TOKEN_CACHE_SECONDS", cls.token_cache_seconds),
            series_key=series_key,
            series_token_ttl=envvars.seconds(
                env, "WORKMESH_SERIES_TOKEN_TTL", cls.series_token_ttl, minimum=60, maximum=7 * 24 * 3600
            ),
        )

    def describe(self, tokens: bool = True) -> str:
        """One line for the start-up log: what is accepted (never a secret); `tokens`: whether
        API tokens can be checked (the service has the token store)."""
        if not self.enabled:
            return "authentication is OFF: every caller may see, cancel and delete every job (WORKMESH_AUTH=on)"
        kinds = []
        if self.jwt.secret:
            kinds.append("JWT HS256 (shared secret)")
        if self.jwt.jwks_url:
            kinds.append(f"JWT {'/'.join(self.jwt.algorithms)} from {self.jwt.jwks_url}")
        if self.jwt.jwks_file:
            kinds.append(f"JWT {'/'.join(self.jwt.algorithms)} from {self.jwt.jwks_file}")
        if tokens:
            kinds.append("API tokens")
        return "authentication is on: " + ", ".join(kinds)


def announce(log: logging.Logger, service: str, config: AuthConfig, *, tokens: bool = True) -> None:
    """Say at start-up whether `service` authenticates its callers (a warning when it does not)."""
    (log.info if config.enabled else log.warning)("%s: %s", service, config.describe(tokens))
