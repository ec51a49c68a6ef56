"""Sharing: grants of read (or read + manage) access to one job, or to every job with a label
value, given by the job's owner to another subject or to a group claim of the same tenant.

A grant never crosses tenants: it is stored under the owner's tenant and applies only to callers
of that tenant (another tenant's job stays NOT_FOUND). The access rule asks for grants only when
the caller is neither the owner nor a holder of ``jobs:manage`` (:meth:`Identity.access_to`
says ``denied``), so a caller's own jobs never cost a grant look-up.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from workmesh.services.core.auth._identity import Identity
from workmesh.services.core.errors import InvalidArgument

__all__ = [
    "LEVELS",
    "MANAGE_LEVEL",
    "READ_LEVEL",
    "Grant",
    "GrantStore",
    "MemoryGrants",
    "level_of",
    "new_grant",
    "parse_label",
]

READ_LEVEL = "read"
MANAGE_LEVEL = "manage"  # read + cancel, delete, retry
LEVELS = (READ_LEVEL, MANAGE_LEVEL)
_ID_LEN = 16
_LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,62}")
_RESERVED_PREFIX = "workmesh."  # the owner/priority/version labels: never a grant's
_MAX_VALUE = 200
_MAX_GRANTEE = 300


@dataclass(frozen=True)
class Grant:
    """Access to a job (or to the jobs with a label value) given to a subject or a group.

    Attributes:
        grant_id: 16 hex digits.
        tenant: the tenant of the jobs and of the grantee.
        grantee: a subject, or a group claim value when ``group``.
        group: the grantee is a group claim (``Identity.groups``), not a subject.
        level: :data:`READ_LEVEL` or :data:`MANAGE_LEVEL`.
        job_id: the job shared, or empty for a label grant.
        label_key, label_value: the label every shared job carries (a label grant).
        owner: whose jobs a label grant covers (the sharer's own: another subject's job with the
            same label stays unshared); empty: any subject's of the tenant (authentication off).
            For a job grant, the job's owner.
        created_by: the subject that shared.
        created_at: epoch seconds.
    """

    grant_id: str
    tenant: str
    grantee: str
    level: str = READ_LEVEL
    group: bool = False
    job_id: str = ""
    label_key: str = ""
    label_value: str = ""
    owner: str = ""
    created_by: str = ""
    created_at: float = 0.0

    @property
    def resource(self) -> str:
        """What is shared, as people write it: a job id, or ``key=value``."""
        return self.job_id or f"{self.label_key}={self.label_value}"

    def covers(self, job_id: str, labels: Mapping[str, str], owner: str) -> bool:
        """Whether the grant is about this job (of `owner`, a subject of the grant's tenant)."""
        if self.job_id:
            return self.job_id == job_id
        return labels.get(self.label_key) == self.label_value and (not self.owner or self.owner == owner)

    def reaches(self, identity: Identity) -> bool:
        """Whether the grant is to this caller (its subject, or one of its groups, in its tenant)."""
        if identity.tenant != self.tenant:
            return False
        return self.grantee in identity.groups if self.group else self.grantee == identity.subject


def level_of(
    identity: Identity, grants: Iterable[Grant], job_id: str, labels: Mapping[str, str], owner: str
) -> str | None:
    """The highest level the grants give `identity` on the job `job_id` of `owner`, or None."""
    best: str | None = None
    for grant in grants:
        if grant.reaches(identity) and grant.covers(job_id, labels, owner):
            if grant.level == MANAGE_LEVEL:
                return MANAGE_LEVEL
            best = READ_LEVEL
    return best


def parse_label(text: str, field: str = "label") -> tuple[str, str]:
    """``key=value`` as a (key, value) pair.

    Raises:
        InvalidArgument: naming `field` and the rule broken.
    """
    key, sep, value = text.partition("=")
    if not sep:
        raise InvalidArgument(field, f"must be key=value, got {text!r}")
    if not _LABEL_KEY.fullmatch(key):
        raise InvalidArgument(
            field, f"key {key!r} must be 1-63 letters, digits, '.', '_', '/' or '-', starting with a letter or digit"
        )
    if key.startswith(_RESERVED_PREFIX):
        raise InvalidArgument(
            field, f"key {key!r} is reserved (the workmesh.* labels are the mesh's own; share by a label of yours)"
        )
    if not value or len(value) > _MAX_VALUE:
        raise InvalidArgument(field, f"value must be 1-{_MAX_VALUE} characters")
    return key, value


def new_grant(
    tenant: str,
    grantee: str,
    *,
    level: str = READ_LEVEL,
    group: bool = False,
    job_id: str = "",
    label: str = "",
    owner: str = "",
    created_by: str = "",
) -> Grant:
    """A validated grant with a fresh id, not stored yet: exactly one of `job_id` and `label`.

    Raises:
        InvalidArgument: naming the field (``grantee``, ``level``, ``job_id``/``label``).
    """
    if not grantee or len(grantee) > _MAX_GRANTEE or grantee != grantee.strip():
        raise InvalidArgument("grantee", f"must be 1-{_MAX_GRANTEE} characters without surrounding spaces")
    if level not in LEVELS:
        raise InvalidArgument("level", f"must be one of {', '.join(LEVELS)}, got {level!r}")
    if bool(job_id) == bool(label):
        raise InvalidArgument("job_id", "name exactly one of job_id and label (key=value)")
    key, value = parse_label(label) if label else ("", "")
    return Grant(
        grant_id=secrets.token_hex(_ID_LEN // 2),
        tenant=tenant,
        grantee=grantee,
        level=level,
        group=group,
        job_id=job_id,
        label_key=key,
        label_value=value,
        owner=owner,
        created_by=created_by,
        created_at=time.time(),
    )


@runtime_checkable
class GrantStore(Protocol):
    """Where grants are kept (the job store: memory, SQLite, PostgreSQL)."""

    async def create_grant(self, grant: Grant) -> None:
        """Store `grant`; returns once it is durable."""
        ...

    async def find_grant(self, grant_id: str) -> Grant | None:
        """The grant with this id, or None."""
        ...

    async def list_grants(self, tenant: str | None = None, *, job_id: str | None = None) -> list[Grant]:
        """The grants of `tenant` (every tenant's when None; of one job's id when `job_id`),
        oldest first."""
        ...

    async def grants_to(self, tenant: str, subject: str, groups: Iterable[str] = ()) -> list[Grant]:
        """The grants of `tenant` to `subject` or to any of `groups`."""
        ...

    async def delete_grant(self, grant_id: str) -> Grant | None:
        """Remove a grant; the removed grant, or None when there was none."""
        ...


class MemoryGrants:
    """:class:`GrantStore` in process memory (the in-memory job store's)."""

    def __init__(self) -> None:
        self._grants: dict[str, Grant] = {}

    async def create_grant(self, grant: Grant) -> None:
        self._grants[grant.grant_id] = grant

    async def find_grant(self, grant_id: str) -> Grant | None:
        return self._grants.get(grant_id)

    async def list_grants(self, tenant: str | None = None, *, job_id: str | None = None) -> list[Grant]:
        found = [
            g
            for g in self._grants.values()
            if (tenant is None or g.tenant == tenant) and (job_id is None or g.job_id == job_id)
        ]
        return sorted(found, key=lambda g: (g.created_at, g.grant_id))

    async def grants_to(self, tenant: str, subject: str, groups: Iterable[str] = ()) -> list[Grant]:
        wanted = set(groups)
        return [g for g in await self.list_grants(tenant) if (g.grantee in wanted if g.group else g.grantee == subject)]

    async def delete_grant(self, grant_id: str) -> Grant | None:
        return self._grants.pop(grant_id, None)
