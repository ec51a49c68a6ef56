"""The public names of workmesh.services.core.auth are pinned: changing them is an API change."""

from workmesh.services.core import auth


def test_exports():
    assert sorted(auth.__all__) == sorted(
        [
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
    )
    for name in auth.__all__:
        assert getattr(auth, name) is not None
    assert set(auth.SCOPES) == {
        "types:read",
        "jobs:submit",
        "jobs:read",
        "jobs:manage",
        "series:read",
        "tokens:admin",
        "admin",
    }
