"""Who is calling: the :class:`Identity` of an authenticated caller, the scopes, and the
per-call context variable through which handler code reads it."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Literal

from workmesh.services.core.errors import PermissionDenied

__all__ = [
    "ADMIN",
    "JOBS_MANAGE",
    "JOBS_READ",
    "JOBS_SUBMIT",
    "SCOPES",
    "SERIES_READ",
    "TOKENS_ADMIN",
    "TYPES_READ",
    "Identity",
    "current_identity",
    "require_scope",
    "reset_identity",
    "use_identity",
]

TYPES_READ = "types:read"
JOBS_SUBMIT = "jobs:submit"
JOBS_READ = "jobs:read"
JOBS_MANAGE = "jobs:manage"  # cancel/delete/read the other subjects' jobs in the caller's tenant
SERIES_READ = "series:read"
TOKENS_ADMIN = "tokens:admin"
ADMIN = "admin"  # every scope, in every tenant
SCOPES = (TYPES_READ, JOBS_SUBMIT, JOBS_READ, JOBS_MANAGE, SERIES_READ, TOKENS_ADMIN, ADMIN)


@dataclass(frozen=True)
class Identity:
    """An authenticated caller.

    Attributes:
        tenant: the tenant the caller acts in; jobs and series belong to a tenant.
        subject: who the caller is within the tenant (a user id, or ``token:<name>`` for an
            API token).
        scopes: what the caller may do (see :data:`SCOPES`; unknown scopes are kept and ignored).
        groups: group claims, for grants to a group.
        via: how it was authenticated: ``"jwt"`` or ``"token"``.
    """

    tenant: str
    subject: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    groups: frozenset[str] = field(default_factory=frozenset)
    via: str = "jwt"

    def has(self, scope: str) -> bool:
        """Whether the caller holds `scope` (``admin`` holds every scope)."""
        return scope in self.scopes or ADMIN in self.scopes

    @property
    def admin(self) -> bool:
        """Cross-tenant operations are allowed."""
        return ADMIN in self.scopes

    def access_to(self, tenant: str, subject: str) -> Literal["allowed", "hidden", "denied"]:
        """The rule for a job (and its series) owned by `subject` of `tenant`, in one place.

        ``allowed`` for ``admin``, the owner, or a holder of ``jobs:manage`` in the owner's tenant;
        ``hidden`` for another tenant's (answer NOT_FOUND, as for a job that does not exist);
        ``denied`` for another subject's of the same tenant (answer PERMISSION_DENIED).
        """
        if self.admin:
            return "allowed"
        if tenant != self.tenant:
            return "hidden"
        if subject != self.subject and not self.has(JOBS_MANAGE):
            return "denied"
        return "allowed"

    def require(self, scope: str) -> None:
        """Raise PermissionDenied naming `scope` unless the caller holds it."""
        if not self.has(scope):
            raise PermissionDenied(
                f"this call needs the scope {scope!r}; the caller "
                f"{self.subject!r} of tenant {self.tenant!r} does not have it"
            )


_CURRENT: contextvars.ContextVar[Identity | None] = contextvars.ContextVar("workmesh_identity", default=None)


def current_identity() -> Identity | None:
    """The caller of the call being served, or None when authentication is off."""
    return _CURRENT.get()


def use_identity(identity: Identity | None) -> contextvars.Token:
    """Make `identity` the current caller (for this task and the tasks it starts); returns the
    token to reset it with (``_CURRENT.reset``) — see :func:`reset_identity`."""
    return _CURRENT.set(identity)


def reset_identity(token: contextvars.Token) -> None:
    """Undo :func:`use_identity`."""
    _CURRENT.reset(token)


def require_scope(scope: str) -> Identity | None:
    """The current caller, checked to hold `scope`; None when authentication is off.

    Raises:
        PermissionDenied: naming the scope.
    """
    identity = _CURRENT.get()
    if identity is not None:
        identity.require(scope)
    return identity
