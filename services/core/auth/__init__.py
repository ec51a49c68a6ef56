"""Who is calling, and what it may do: identities, JWT and API-token authentication, scopes,
grants (sharing).

Authentication is off unless ``WORKMESH_AUTH=on`` (:class:`AuthConfig`). When on, servers
install :class:`AuthInterceptor`; handler code asks :func:`current_identity` (None when off)
or :func:`require_scope`.
"""

from workmesh.services.core.auth._authenticator import Authenticator, bearer
from workmesh.services.core.auth._capability import (
    CAPABILITY_METADATA,
    SeriesCapabilities,
    WriteGrant,
    capability_of,
)
from workmesh.services.core.auth._client import bearer_interceptors, with_bearer
from workmesh.services.core.auth._config import AuthConfig, announce
from workmesh.services.core.auth._grants import (
    LEVELS,
    MANAGE_LEVEL,
    READ_LEVEL,
    Grant,
    GrantStore,
    MemoryGrants,
    level_of,
    new_grant,
    parse_label,
)
from workmesh.services.core.auth._identity import (
    ADMIN,
    JOBS_MANAGE,
    JOBS_READ,
    JOBS_SUBMIT,
    SCOPES,
    SERIES_READ,
    TOKENS_ADMIN,
    TYPES_READ,
    Identity,
    current_identity,
    require_scope,
    reset_identity,
    use_identity,
)
from workmesh.services.core.auth._interceptor import PUBLIC_METHODS, AuthInterceptor
from workmesh.services.core.auth._jwt import JwtConfig, JwtVerifier
from workmesh.services.core.auth._tokens import (
    TOKEN_PREFIX,
    ApiTokenVerifier,
    MemoryTokens,
    TokenRecord,
    TokenStore,
    check_scopes,
    is_api_token,
    new_token,
)

__all__ = [
    "ADMIN",
    "CAPABILITY_METADATA",
    "JOBS_MANAGE",
    "LEVELS",
    "MANAGE_LEVEL",
    "JOBS_READ",
    "JOBS_SUBMIT",
    "PUBLIC_METHODS",
    "READ_LEVEL",
    "SCOPES",
    "SERIES_READ",
    "TOKENS_ADMIN",
    "TOKEN_PREFIX",
    "TYPES_READ",
    "ApiTokenVerifier",
    "AuthConfig",
    "AuthInterceptor",
    "Authenticator",
    "Grant",
    "GrantStore",
    "Identity",
    "JwtConfig",
    "JwtVerifier",
    "MemoryGrants",
    "MemoryTokens",
    "SeriesCapabilities",
    "TokenRecord",
    "TokenStore",
    "WriteGrant",
    "announce",
    "bearer",
    "bearer_interceptors",
    "capability_of",
    "check_scopes",
    "current_identity",
    "is_api_token",
    "level_of",
    "new_grant",
    "new_token",
    "parse_label",
    "require_scope",
    "reset_identity",
    "use_identity",
    "with_bearer",
]
