"""``workmesh dev --auth``: authentication on one machine, with keys made for it.

The first run writes two random keys into the dev data dir (``auth-keys.json``, mode 0600): the
HS256 secret the gateway and results service verify JWTs with, and the key the gateway signs
series-write capabilities with. Later runs reuse them, so a token printed before keeps working
until it expires. The printed token is a JWT with every scope for the tenant ``local``.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

__all__ = ["DEV_SUBJECT", "DEV_TENANT", "OFF_NOTICE", "dev_auth_env", "dev_token"]

DEV_TENANT = "local"
DEV_SUBJECT = "dev"
TOKEN_DAYS = 30
OFF_NOTICE = (
    "authentication is OFF: every caller may see, cancel and delete every job "
    "(`workmesh dev --auth` turns it on with a local key)"
)


def _keys(data_dir: Path) -> dict[str, str]:
    path = data_dir / "auth-keys.json"
    if path.exists():
        return json.loads(path.read_text())
    keys = {"jwt_secret": secrets.token_urlsafe(48), "series_key": secrets.token_urlsafe(48)}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(keys, f)
    return keys


def dev_auth_env(data_dir: Path) -> dict[str, str]:
    """The environment that turns authentication on for every process of a dev mesh."""
    keys = _keys(data_dir)
    return {"WORKMESH_AUTH": "on", "WORKMESH_JWT_SECRET": keys["jwt_secret"], "WORKMESH_SERIES_KEY": keys["series_key"]}


def dev_token(data_dir: Path, *, days: float = TOKEN_DAYS) -> str:
    """A JWT with every scope for tenant ``local``, signed with the dev mesh's key."""
    # Here, not at import: every CLI call imports this module, few make a token (JWT and the
    # auth package cost 0.3 s of CPU at start-up).
    import jwt

    from workmesh.services.core.auth import SCOPES

    now = int(time.time())
    claims = {
        "sub": DEV_SUBJECT,
        "tenant": DEV_TENANT,
        "scope": " ".join(SCOPES),
        "iat": now,
        "exp": now + int(days * 86400),
    }
    return jwt.encode(claims, _keys(data_dir)["jwt_secret"], algorithm="HS256")
