"""Static API tokens for service accounts and scripts: shown once, stored hashed, revocable.

A token reads ``wmt_<id>_<secret>``: the id finds its record, the secret is checked against the
stored SHA-256 of it with a constant-time comparison. The secret is 256 random bits, so a fast
hash is enough (a slow password hash protects guessable secrets; these cannot be guessed) and
costs nothing per call. The plaintext exists only in the reply to ``token create``.

Verified records are cached for ``cache_seconds`` (5 s by default): a revoked token stops
working within that time on every gateway replica, without a database read per call.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

from workmesh.services.core.auth._identity import SCOPES, Identity
from workmesh.services.core.errors import InvalidArgument, Unauthenticated

__all__ = [
    "TOKEN_PREFIX",
    "ApiTokenVerifier",
    "MemoryTokens",
    "TokenRecord",
    "TokenStore",
    "check_scopes",
    "is_api_token",
    "new_token",
]

TOKEN_PREFIX = "wmt_"
_ID_LEN = 16
_TOKEN = re.compile(r"wmt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class TokenRecord:
    """A stored API token (never its secret).

    Attributes:
        token_id: the public part of the token (16 hex digits).
        tenant: the tenant the token acts in.
        name: unique among the tenant's live tokens; the token's subject is ``token:<name>``.
        scopes: what it may do.
        secret_hash: SHA-256 of the secret, hex.
        created_at, revoked_at: epoch seconds; ``revoked_at`` None while the token is live.
        created_by: the subject that created it.
    """

    token_id: str
    tenant: str
    name: str
    scopes: tuple[str, ...]
    secret_hash: str = field(repr=False)
    created_at: float = 0.0
    revoked_at: float | None = None
    created_by: str = ""

    @property
    def subject(self) -> str:
        return f"token:{self.name}"

    def identity(self) -> Identity:
        return Identity(tenant=self.tenant, subject=self.subject, scopes=frozenset(self.scopes), via="token")


@runtime_checkable
class TokenStore(Protocol):
    """Where API tokens are kept (the gateway's job store; :class:`MemoryTokens` in memory)."""

    async def create_token(self, record: TokenRecord) -> None:
        """Store a new token; raise InvalidArgument if the tenant has a live token of that name."""

    async def find_token(self, token_id: str) -> TokenRecord | None:
        """The token with that id, revoked or not; None if there is none."""

    async def list_tokens(self, tenant: str | None = None) -> list[TokenRecord]:
        """Tokens (of one tenant, or all), oldest first."""

    async def revoke_token(self, token_id: str, at: float) -> TokenRecord | None:
        """Mark a token revoked (a no-op if it already is); None if there is none."""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_scopes(scopes) -> tuple[str, ...]:
    """The scopes of a token to create, checked against :data:`SCOPES`.

    Raises:
        InvalidArgument: an unknown scope, or none.
    """
    out = tuple(dict.fromkeys(s.strip() for s in scopes if s.strip()))
    if not out:
        raise InvalidArgument("scopes", f"must name at least one of {', '.join(SCOPES)}")
    for scope in out:
        if scope not in SCOPES:
            raise InvalidArgument("scopes", f"{scope!r} is not a scope; known: {', '.join(SCOPES)}")
    return out


def new_token(tenant: str, name: str, scopes, *, created_by: str = "") -> tuple[str, TokenRecord]:
    """A new token: its plaintext (show it once) and the record to store.

    Raises:
        InvalidArgument: an empty tenant, a bad name or unknown scopes.
    """
    if not tenant or len(tenant) > 200:
        raise InvalidArgument("tenant", "must be 1 to 200 characters")
    if not _NAME.fullmatch(name):
        raise InvalidArgument("name", "must be 1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit")
    token_id = secrets.token_hex(_ID_LEN // 2)
    secret = secrets.token_urlsafe(32)  # 43 characters
    record = TokenRecord(
        token_id=token_id,
        tenant=tenant,
        name=name,
        scopes=check_scopes(scopes),
        secret_hash=_hash(secret),
        created_at=time.time(),
        created_by=created_by,
    )
    return f"{TOKEN_PREFIX}{token_id}_{secret}", record


def is_api_token(token: str) -> bool:
    """Whether `token` has the shape of an API token (else it is taken for a JWT)."""
    return token.startswith(TOKEN_PREFIX)


class ApiTokenVerifier:
    """Checks API tokens against a :class:`TokenStore`, caching records for `cache_seconds`.

    Args:
        store: where the tokens are.
        cache_seconds: how long a looked-up record is trusted (the revocation delay).
    """

    def __init__(self, store: TokenStore, *, cache_seconds: float = 5.0, max_cached: int = 10_000) -> None:
        self._store = store
        self._ttl = cache_seconds
        self._max = max_cached
        self._cache: dict[str, tuple[float, TokenRecord | None]] = {}

    async def verify(self, token: str) -> Identity:
        """The identity of a live API token.

        Raises:
            Unauthenticated: malformed, unknown, revoked, or a wrong secret.
        """
        match = _TOKEN.fullmatch(token)
        if match is None:
            raise Unauthenticated("malformed API token")
        token_id, secret = match.groups()
        now = time.monotonic()
        cached = self._cache.get(token_id)
        if cached is not None and now - cached[0] < self._ttl:
            record = cached[1]
        else:
            record = await self._store.find_token(token_id)
            if len(self._cache) >= self._max:
                self._cache.clear()  # bounded; refilled from the store within one TTL
            self._cache[token_id] = (now, record)
        # Compared even for an unknown id, so that the answer takes the same time either way.
        expected = record.secret_hash if record is not None else "0" * 64
        if not hmac.compare_digest(_hash(secret), expected) or record is None:
            raise Unauthenticated("unknown API token")
        if record.revoked_at is not None:
            raise Unauthenticated(f"API token {record.name!r} was revoked")
        return record.identity()


class MemoryTokens:
    """:class:`TokenStore` in process memory (tests, ``memory://`` job stores)."""

    def __init__(self) -> None:
        self._api_tokens: dict[str, TokenRecord] = {}

    async def create_token(self, record: TokenRecord) -> None:
        for other in self._api_tokens.values():
            if other.tenant == record.tenant and other.name == record.name and other.revoked_at is None:
                raise InvalidArgument(
                    "name",
                    f"tenant {record.tenant!r} has a live token named {record.name!r}; "
                    f"revoke it first or choose another name",
                )
        self._api_tokens[record.token_id] = record

    async def find_token(self, token_id: str) -> TokenRecord | None:
        return self._api_tokens.get(token_id)

    async def list_tokens(self, tenant: str | None = None) -> list[TokenRecord]:
        return sorted(
            (r for r in self._api_tokens.values() if tenant is None or r.tenant == tenant), key=lambda r: r.created_at
        )

    async def revoke_token(self, token_id: str, at: float) -> TokenRecord | None:
        record = self._api_tokens.get(token_id)
        if record is None:
            return None
        if record.revoked_at is None:
            record = self._api_tokens[token_id] = replace(record, revoked_at=at)
        return record
