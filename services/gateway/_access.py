"""Who may see and touch which job: the gateway's access rules over the caller's identity.

A job belongs to the tenant and subject that submitted it (the reserved owner labels the
scheduler keys on too). With authentication on, for every RPC that names a job:

* a job of another tenant is NOT_FOUND, worded exactly as a job that does not exist — its
  existence does not leak;
* a job of the same tenant but another subject is PERMISSION_DENIED, unless the caller holds
  ``jobs:manage`` (the tenant's operators) or a grant (sharing, ``core.auth.Grant``): the owner
  shared the job, or a label value it carries, with the caller's subject or one of its groups —
  ``read`` lets it read the job, ``manage`` also cancel, delete and retry it;
* ``admin`` sees every job of every tenant.

Scopes are checked first and the same way for every job (the answer does not depend on the
job): reading needs ``jobs:read``; cancelling or deleting needs ``jobs:submit`` (one's own
jobs) or ``jobs:manage``. With authentication off every rule here lets everything through.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from workmesh.services.core.auth import (
    JOBS_MANAGE,
    JOBS_READ,
    JOBS_SUBMIT,
    MANAGE_LEVEL,
    Grant,
    GrantStore,
    Identity,
    current_identity,
    level_of,
)
from workmesh.services.core.errors import InvalidArgument, NotFound, PermissionDenied
from workmesh.services.gateway.dispatch._fairshare import Owner
from workmesh.services.gateway.dispatch._jobqueue import TENANT_LABEL, USER_LABEL
from workmesh.services.gateway.store import JobRecord

__all__ = [
    "MANAGE",
    "READ",
    "SHARE",
    "caller_owner",
    "check_job",
    "list_filter",
    "owned_key",
    "scan_visible",
    "shared_level",
    "visible_job",
    "visible_tenant",
]

READ = "read"
MANAGE = "manage"
SHARE = "share"  # give or take a grant: the owner, jobs:manage or admin only (never a grantee)
# Records scanned per ListJobs call at most while looking for the caller's jobs: a page may come
# back short (with a next_page_token) rather than scanning the whole store.
MAX_SCAN = 5000


def unknown(job_id: str) -> NotFound:
    """The one NOT_FOUND of a job the caller may not know about (same words as a missing job)."""
    return NotFound(f"job_id: no job {job_id!r}")


def _owner(record: JobRecord) -> Owner:
    labels = record.labels or {}
    return Owner(labels.get(TENANT_LABEL, ""), labels.get(USER_LABEL, ""))


def _require_action(identity: Identity, action: str) -> None:
    if action == READ:
        identity.require(JOBS_READ)
    elif not (identity.has(JOBS_SUBMIT) or identity.has(JOBS_MANAGE)):
        identity.require(JOBS_SUBMIT)  # raises, naming the scope


async def shared_level(grants: GrantStore | None, identity: Identity, record: JobRecord) -> str | None:
    """The level (``read``/``manage``) the caller's grants give it on the job, or None."""
    if grants is None:
        return None
    found = await grants.grants_to(identity.tenant, identity.subject, identity.groups)
    return level_of(identity, found, record.job_id, record.labels or {}, _owner(record).user)


async def check_job(
    record: JobRecord, action: str, grants: GrantStore | None, identity: Identity | None = None
) -> None:
    """Raise unless the current caller may `action` (READ, MANAGE or SHARE) this job.

    Args:
        grants: where the grants are (the job store); None: no sharing.

    Raises:
        PermissionDenied: a missing scope, or another subject's job without ``jobs:manage`` or
            a grant of the level `action` needs.
        NotFound: a job of another tenant.
    """
    identity = identity or current_identity()
    if identity is None:
        return
    _require_action(identity, action)
    owner = _owner(record)
    access = identity.access_to(owner.tenant, owner.user)
    if access == "hidden":
        raise unknown(record.job_id)
    if access == "allowed":
        return
    level = None if action == SHARE else await shared_level(grants, identity, record)
    if level == MANAGE_LEVEL or (level is not None and action == READ):
        return
    if level is not None:
        raise PermissionDenied(
            f"job_id: job {record.job_id!r} is shared with {identity.subject!r} for reading only; "
            f"cancelling, deleting or retrying it needs a manage grant from its owner, or the scope {JOBS_MANAGE!r}"
        )
    if action == SHARE:
        raise PermissionDenied(
            f"job_id: only the owner of job {record.job_id!r} (or a holder of the scope {JOBS_MANAGE!r}) "
            "can share it or take a grant of it back"
        )
    raise PermissionDenied(
        f"job_id: job {record.job_id!r} belongs to another subject of tenant "
        f"{identity.tenant!r}; its owner can share it, or ask for the scope "
        f"{JOBS_MANAGE!r}"
    )


async def visible_job(
    get: Callable[[str], Awaitable[JobRecord | None]], job_id: str, action: str, grants: GrantStore | None
) -> JobRecord | None:
    """Check the caller's access to a job by id before an RPC acts on it (a no-op when
    authentication is off, so the job is not read twice).

    Returns:
        The record read for the check (None when authentication is off).

    Raises:
        NotFound: no such job, or one of another tenant (the same message).
        PermissionDenied: see :func:`check_job`.
    """
    identity = current_identity()
    if identity is None:
        return None
    _require_action(identity, action)  # before the read: the answer must not depend on the job
    record = await get(job_id)
    if record is None:
        raise unknown(job_id)
    await check_job(record, action, grants, identity)
    return record


def caller_owner(declared: Owner) -> Owner:
    """The owner a submit is accounted to: the authenticated caller's (tenant, subject); with
    authentication off, the declared one.

    Raises:
        PermissionDenied: the caller lacks ``jobs:submit``.
        InvalidArgument: a declared tenant/user other than the caller's own.
    """
    identity = current_identity()
    if identity is None:
        return declared
    identity.require(JOBS_SUBMIT)
    for field, declared_value, own in (
        ("tenant", declared.tenant, identity.tenant),
        ("user", declared.user, identity.subject),
    ):
        if declared_value and declared_value != own:
            raise InvalidArgument(
                field, f"must be empty or the caller's own ({own!r}): with authentication on, jobs belong to the caller"
            )
    return Owner(identity.tenant, identity.subject)


def owned_key(key: str | None) -> str | None:
    """The stored idempotency key: with authentication on, one per owner (another tenant's
    identical key neither finds nor blocks the caller's job)."""
    identity = current_identity()
    if not key or identity is None:
        return key
    digest = hashlib.sha256(f"{identity.tenant}\n{identity.subject}\n{key}".encode()).hexdigest()
    return f"o:{digest}"


def list_filter(
    tenant_wide: bool, all_tenants: bool, shared: list[Grant] | None = None
) -> Callable[[JobRecord], bool] | None:
    """Which jobs a ListJobs call returns: None (all) with authentication off; the caller's own
    by default, and those its grants (`shared`, when given) reach; the tenant's with
    ``tenant_wide`` (needs ``jobs:manage``); every tenant's with ``all_tenants`` (needs ``admin``).

    Raises:
        PermissionDenied: naming the scope a flag needs.
    """
    identity = current_identity()
    if identity is None:
        return None
    identity.require(JOBS_READ)
    if all_tenants:
        identity.require("admin")
        return None
    tenant, subject = identity.tenant, identity.subject
    if tenant_wide:
        identity.require(JOBS_MANAGE)
        return lambda record: _owner(record).tenant == tenant
    me = Owner(tenant, subject)
    if not shared:
        return lambda record: _owner(record) == me

    def mine_or_shared(record: JobRecord) -> bool:
        owner = _owner(record)
        if owner == me:
            return True
        return (
            owner.tenant == tenant
            and level_of(identity, shared, record.job_id, record.labels or {}, owner.user) is not None
        )

    return mine_or_shared


def visible_tenant() -> str | None:
    """The only tenant whose owners the caller may see in queue views; None: every tenant."""
    identity = current_identity()
    if identity is None or identity.admin:
        return None
    identity.require(JOBS_READ)
    return identity.tenant


async def scan_visible(
    list_page: Callable[..., Awaitable[list[JobRecord]]],
    keep: Callable[[JobRecord], bool] | None,
    want: int,
    after: str | None,
) -> tuple[list[JobRecord], str | None]:
    """Up to `want` records the caller may see, in the store's order after `after`.

    Returns:
        The records, and where to resume when the scan stopped at :data:`MAX_SCAN` records
        before finding `want` (None: the records are all there is, or `want` were found).
    """
    if keep is None:
        return await list_page(limit=want, after=after), None
    found: list[JobRecord] = []
    scanned, cursor = 0, after
    batch_size = min(1000, max(want, 100))
    while scanned < MAX_SCAN:
        batch = await list_page(limit=batch_size, after=cursor)
        for record in batch:
            scanned += 1
            cursor = record.job_id
            if keep(record):
                found.append(record)
                if len(found) == want:
                    return found, None
        if len(batch) < batch_size:
            return found, None
    return found, cursor
