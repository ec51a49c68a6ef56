"""The filters of a ListJobs request (owner, labels, parent_id), checked and turned into the
job store's ``labels`` and ``parent_id`` arguments.

The owner is the ``workmesh.user`` label every job carries (see ``_queue_service.owner_labels``),
so an owner filter is a label filter the store answers like any other. These filters only narrow
a listing: which jobs the caller may see at all is decided by ``_access.list_filter``.
"""

from __future__ import annotations

import re

from workmesh.services.core.errors import InvalidArgument
from workmesh.services.gateway._queue_service import MAX_OWNER_LENGTH
from workmesh.services.gateway.dispatch._jobqueue import TENANT_LABEL, USER_LABEL

__all__ = ["MAX_LABEL_SELECTORS", "list_selectors", "within_scope"]

MAX_LABEL_SELECTORS = 16
_MAX_VALUE = 1024
_MAX_JOB_ID = 64  # the job store's job_id column
# The keys a selector can name: those a share can (core/auth), workmesh.* included.
_LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,62}")


def list_selectors(request) -> tuple[dict[str, str], str | None]:
    """The label pairs every listed job must carry, and the parent job id (None: any), of a
    ``ListJobsRequest``.

    Raises:
        InvalidArgument: naming the field (``owner``, ``labels[i]``, ``parent_id``) and the rule.
    """
    if len(request.labels) > MAX_LABEL_SELECTORS:
        raise InvalidArgument("labels", f"at most {MAX_LABEL_SELECTORS} selectors, got {len(request.labels)}")
    wanted: dict[str, str] = {}
    for i, text in enumerate(request.labels):
        field = f"labels[{i}]"
        key, sep, value = text.partition("=")
        if not sep:
            raise InvalidArgument(field, f"must be key=value, got {text[:100]!r}")
        if not _LABEL_KEY.fullmatch(key):
            raise InvalidArgument(
                field,
                f"key {key[:100]!r} must be 1-63 letters, digits, '.', '_', '/' or '-', "
                "starting with a letter or digit",
            )
        if len(value) > _MAX_VALUE:
            raise InvalidArgument(field, f"value must be at most {_MAX_VALUE} characters")
        if key in wanted and wanted[key] != value:
            raise InvalidArgument(field, f"key {key!r} is already selected with another value")
        wanted[key] = value
    owner = request.owner
    if owner:
        if len(owner) > MAX_OWNER_LENGTH:
            raise InvalidArgument("owner", f"must be at most {MAX_OWNER_LENGTH} characters")
        if wanted.get(USER_LABEL, owner) != owner:
            raise InvalidArgument("owner", f"contradicts the selector {USER_LABEL}={wanted[USER_LABEL]!r} in labels")
        wanted[USER_LABEL] = owner
    parent_id = request.parent_id or None
    if parent_id is not None and len(parent_id) > _MAX_JOB_ID:
        raise InvalidArgument("parent_id", f"must be at most {_MAX_JOB_ID} characters (a job id)")
    return wanted, parent_id


def within_scope(
    wanted: dict[str, str], identity, *, tenant_wide: bool, all_tenants: bool, shared: bool
) -> dict[str, str] | None:
    """`wanted` plus the owner labels the caller's scope implies, so that the job store skips the
    jobs the caller may not see instead of the gateway reading and dropping them: the caller's
    tenant, and its own user unless ``tenant_wide`` or ``shared`` (jobs of others in the tenant)
    are asked for. Nothing for ``all_tenants`` or with authentication off (`identity` None).

    Only narrows to what ``_access.list_filter`` keeps anyway (it still decides); an empty tenant
    or subject stays out (an absent label is no store filter). None: the filters contradict the
    scope (e.g. another owner without tenant_wide or shared), so no job can match.
    """
    if identity is None or all_tenants:
        return wanted
    implied = {TENANT_LABEL: identity.tenant}
    if not (tenant_wide or shared):
        implied[USER_LABEL] = identity.subject
    out = dict(wanted)
    for key, value in implied.items():
        if not value:
            continue
        if out.get(key, value) != value:
            return None
        out[key] = value
    return out
