"""``workmesh.v1.Sharing``: share a job (or the jobs with a label value) with another subject or
a group of the tenant, list the shares, take one back (see ``protos/workmesh/v1/sharing.proto``).

Who may: sharing needs ``jobs:submit`` (one's own jobs) or ``jobs:manage``; a job share is
checked with the job rule's SHARE action (the owner, ``jobs:manage`` in its tenant, ``admin`` —
never a grantee); a label share covers the sharer's own jobs, or with ``tenant_wide`` (needs
``jobs:manage``) every job of the tenant carrying the label, whoever owns it — ``admin`` may name
another tenant. Listing needs ``jobs:read``.
Every share and unshare is recorded in the audit log (``share``/``unshare``, the target being
the job id or ``label:key=value``).
"""

from __future__ import annotations

import datetime as dt

from workmesh.services.core.auth import (
    ADMIN,
    JOBS_MANAGE,
    JOBS_READ,
    JOBS_SUBMIT,
    MANAGE_LEVEL,
    READ_LEVEL,
    Grant,
    GrantStore,
    Identity,
    current_identity,
    new_grant,
)
from workmesh.services.core.errors import InvalidArgument, NotFound, PermissionDenied, WorkmeshError, abort
from workmesh.services.gateway._access import SHARE, check_job, unknown
from workmesh.services.gateway._audit import record_action
from workmesh.services.gateway.dispatch._jobqueue import TENANT_LABEL, USER_LABEL
from workmesh.services.gateway.store import AuditLog, JobStore
from workmesh.v1 import sharing_pb2, sharing_pb2_grpc

__all__ = ["SharingServicer", "share_message"]


def share_message(grant: Grant) -> sharing_pb2.Share:
    """A stored grant as the API shows it."""
    out = sharing_pb2.Share(
        share_id=grant.grant_id,
        tenant=grant.tenant,
        job_id=grant.job_id,
        label=f"{grant.label_key}={grant.label_value}" if grant.label_key else "",
        grantee=grant.grantee,
        group=grant.group,
        manage=grant.level == MANAGE_LEVEL,
        owner=grant.owner,
        created_by=grant.created_by,
    )
    out.created_at.FromDatetime(dt.datetime.fromtimestamp(grant.created_at, dt.UTC))
    return out


def _target(grant: Grant) -> str:
    return grant.job_id or f"label:{grant.resource}"


def _detail(grant: Grant) -> str:
    whom = f"group {grant.grantee!r}" if grant.group else repr(grant.grantee)
    wide = " (every job of the tenant with the label)" if grant.label_key and not grant.owner else ""
    return f"share {grant.grant_id}: {grant.level} to {whom}{wide}"


def _same(a: Grant, b: Grant) -> bool:
    return (a.tenant, a.job_id, a.label_key, a.label_value, a.owner, a.grantee, a.group, a.level) == (
        b.tenant,
        b.job_id,
        b.label_key,
        b.label_value,
        b.owner,
        b.grantee,
        b.group,
        b.level,
    )


def _require_share(identity: Identity | None) -> None:
    """The scope sharing needs (before any job is read: the answer must not depend on it)."""
    if identity is not None and not identity.has(JOBS_MANAGE):
        identity.require(JOBS_SUBMIT)


def _may_see(identity: Identity | None, grant: Grant) -> bool:
    if identity is None or identity.admin:
        return True
    if grant.tenant != identity.tenant:
        return False
    if grant.label_key and not grant.owner:
        return True  # a tenant-wide label share: of every subject's jobs with the label, theirs too
    return identity.has(JOBS_MANAGE) or identity.subject in (grant.created_by, grant.owner) or grant.reaches(identity)


class SharingServicer(sharing_pb2_grpc.SharingServicer):
    """Implements workmesh.v1.Sharing over the job store's grants.

    Args:
        store: the job store (its jobs, and its :class:`GrantStore` part).
        audit: where sharing and unsharing are recorded (the job store's audit log).
    """

    def __init__(self, store: JobStore, grants: GrantStore, audit: AuditLog | None = None) -> None:
        self._store = store
        self._grants = grants
        self._audit = audit

    async def _job_grant(self, request, identity: Identity | None, level: str) -> Grant:
        # The job's rule first (NOT_FOUND/PERMISSION_DENIED), then the other fields.
        record = await self._store.get(request.job_id)
        if record is None:
            raise unknown(request.job_id)
        await check_job(record, SHARE, self._grants, identity)
        labels = record.labels or {}
        return new_grant(
            labels.get(TENANT_LABEL, ""),
            request.grantee,
            level=level,
            group=request.group,
            job_id=record.job_id,
            owner=labels.get(USER_LABEL, ""),
            created_by=identity.subject if identity is not None else "",
        )

    @staticmethod
    def _label_grant(request, identity: Identity | None, level: str) -> Grant:
        """A label share: of the sharer's own jobs, or with ``tenant_wide`` of every job of the
        tenant (``jobs:manage``; ``admin`` for another tenant than the caller's)."""
        if not request.label:
            raise InvalidArgument("job_id", "name exactly one of job_id and label (key=value)")
        if request.tenant and not request.tenant_wide:
            raise InvalidArgument("tenant", "only with tenant_wide (a label share of every job of that tenant)")
        tenant = identity.tenant if identity is not None else ""
        owner = identity.subject if identity is not None else ""
        if request.tenant_wide:
            if identity is not None:
                identity.require(JOBS_MANAGE)  # names the scope: sharing others' jobs is an operator's
                if request.tenant and request.tenant != identity.tenant and not identity.admin:
                    raise PermissionDenied(
                        f"tenant: sharing the jobs of tenant {request.tenant!r} needs the scope {ADMIN!r}; "
                        f"the caller {identity.subject!r} shares in its own tenant {identity.tenant!r} only"
                    )
            tenant = request.tenant or tenant
            owner = ""  # every subject's jobs of the tenant
        return new_grant(
            tenant,
            request.grantee,
            level=level,
            group=request.group,
            label=request.label,
            owner=owner,
            created_by=identity.subject if identity is not None else "",
        )

    async def ShareJob(self, request, context):
        try:
            identity = current_identity()
            _require_share(identity)
            level = MANAGE_LEVEL if request.manage else READ_LEVEL
            if request.job_id and request.label:
                raise InvalidArgument("job_id", "name exactly one of job_id and label (key=value), not both")
            if request.job_id and (request.tenant_wide or request.tenant):
                field = "tenant_wide" if request.tenant_wide else "tenant"
                raise InvalidArgument(field, "only with label: a job share names its job, whose tenant it is")
            if request.job_id:
                grant = await self._job_grant(request, identity, level)
            else:
                grant = self._label_grant(request, identity, level)
            if not grant.group and grant.owner and grant.grantee == grant.owner:
                raise InvalidArgument("grantee", f"{grant.grantee!r} owns the shared jobs already")
            for existing in await self._grants.list_grants(grant.tenant, job_id=grant.job_id or None):
                if _same(existing, grant):
                    return share_message(existing)  # shared already: the same answer again
            await self._grants.create_grant(grant)
            await record_action(self._audit, "share", _target(grant), context, _detail(grant))
            return share_message(grant)
        except WorkmeshError as exc:
            await abort(context, exc)

    async def ListShares(self, request, context):
        try:
            identity = current_identity()
            if identity is not None:
                identity.require(JOBS_READ)
            tenant = None if identity is None or identity.admin else identity.tenant
            found = await self._grants.list_grants(tenant, job_id=request.job_id or None)
            return sharing_pb2.ListSharesResponse(shares=[share_message(g) for g in found if _may_see(identity, g)])
        except WorkmeshError as exc:
            await abort(context, exc)

    async def Unshare(self, request, context):
        try:
            identity = current_identity()
            _require_share(identity)
            if not request.share_id:
                raise InvalidArgument("share_id", "must not be empty")
            grant = await self._grants.find_grant(request.share_id)
            if grant is None or (identity is not None and not identity.admin and grant.tenant != identity.tenant):
                raise NotFound(f"share_id: no share {request.share_id!r}")  # another tenant's: as none
            if not (
                identity is None
                or identity.admin
                or identity.has(JOBS_MANAGE)
                or identity.subject in (grant.created_by, grant.owner)
            ):
                raise PermissionDenied(
                    f"share_id: share {grant.grant_id!r} was given by {grant.created_by!r}; only they, the owner "
                    f"of the shared jobs or a holder of the scope {JOBS_MANAGE!r} can take it back"
                )
            removed = await self._grants.delete_grant(grant.grant_id)
            if removed is None:  # taken back meanwhile
                raise NotFound(f"share_id: no share {request.share_id!r}")
            await record_action(self._audit, "unshare", _target(removed), context, _detail(removed))
            return share_message(removed)
        except WorkmeshError as exc:
            await abort(context, exc)
