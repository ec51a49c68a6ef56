"""The scheduler's records: who a job belongs to, their weights and limits, queued and running jobs.

Immutable values shared by :mod:`._fairshare` (the scheduler), :mod:`._usage` (the usage ledger)
and the store and services that persist or show them. No I/O.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

DEFAULT_HALF_LIFE_S = 3600.0


class Owner(NamedTuple):
    """Who a job is accounted to: a user within a tenant (empty strings: the default).

    A named tuple, not a dataclass: owners are dictionary keys on every scheduling decision,
    and a tuple hashes in C.
    """

    tenant: str = ""
    user: str = ""

    def __str__(self) -> str:
        return f"{self.tenant or '-'}/{self.user or '-'}"


@dataclass(frozen=True)
class Limits:
    """Caps on an owner's jobs (None: no cap). Running counts jobs of every type."""

    max_running: int | None = None
    max_queued: int | None = None


@dataclass(frozen=True)
class Shares:
    """Weights and limits: tenant weights, then user weights within a tenant (1 unless set).

    ``tenant_limits``/``user_limits`` override ``default_tenant_limits``/``default_user_limits``
    per tenant or per (tenant, user).
    """

    tenants: Mapping[str, float] = field(default_factory=dict)
    users: Mapping[tuple[str, str], float] = field(default_factory=dict)
    tenant_limits: Mapping[str, Limits] = field(default_factory=dict)
    user_limits: Mapping[tuple[str, str], Limits] = field(default_factory=dict)
    default_tenant_limits: Limits = Limits()
    default_user_limits: Limits = Limits()
    half_life_s: float = DEFAULT_HALF_LIFE_S

    @functools.cached_property
    def limited(self) -> bool:
        """Whether any running limit is set (a job's end may then unblock other types)."""
        return any(
            lim.max_running is not None
            for lim in (
                self.default_tenant_limits,
                self.default_user_limits,
                *self.tenant_limits.values(),
                *self.user_limits.values(),
            )
        )

    def tenant_weight(self, tenant: str) -> float:
        return float(self.tenants.get(tenant, 1.0))

    def user_weight(self, owner: Owner) -> float:
        return float(self.users.get((owner.tenant, owner.user), 1.0))

    def tenant_limit(self, tenant: str) -> Limits:
        return self.tenant_limits.get(tenant, self.default_tenant_limits)

    def user_limit(self, owner: Owner) -> Limits:
        return self.user_limits.get((owner.tenant, owner.user), self.default_user_limits)


@dataclass(frozen=True)
class QueuedJob:
    """A job waiting for a slot. ``enqueued_at`` orders it (its creation time, so the order
    survives a restart); ``seq`` breaks ties between jobs enqueued at the same instant."""

    job_id: str
    workflow_type: str
    owner: Owner = Owner()
    priority: int = 0
    enqueued_at: float = 0.0
    seq: int = 0

    def order_key(self, fifo: bool = False) -> tuple:
        """Within one owner: highest priority first, then oldest (`fifo`: oldest first)."""
        if fifo:
            return (self.enqueued_at, self.seq, self.job_id)
        return (-self.priority, self.enqueued_at, self.seq, self.job_id)


@dataclass(frozen=True)
class RunningJob:
    """A job holding a slot since ``started_at``."""

    job_id: str
    workflow_type: str
    owner: Owner
    started_at: float
