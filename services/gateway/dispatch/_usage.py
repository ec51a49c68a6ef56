"""Fair-share usage: decayed worker-seconds per owner and per tenant. No I/O, no clock.

A slot held from ``s`` is worth ``H/ln2 · (1 - 2^-((t-s)/H))`` worker-seconds at time ``t``
(half-life ``H``); see :mod:`._fairshare` for how the scheduler weighs it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from workmesh.services.gateway.dispatch._sched_model import DEFAULT_HALF_LIFE_S, Owner


class UsageLedger:
    """Decayed worker-seconds per owner: finished work plus the running jobs' work so far.

    A job running from ``s`` contributes ``∫ 2^-((t-x)/H) dx`` over ``[s, t]`` at time ``t``,
    i.e. ``H/ln2 · (1 - 2^-((t-s)/H))``; finished work decays by ``2^-(Δt/H)``.
    """

    def __init__(self, half_life_s: float = DEFAULT_HALF_LIFE_S) -> None:
        self.half_life_s = half_life_s
        self._done: dict[Owner, tuple[float, float]] = {}  # owner -> (value, as of)
        self._tenants: dict[str, tuple[float, float]] = {}  # the same, summed per tenant

    def _decay(self, value: float, dt: float) -> float:
        return value * math.pow(2.0, -max(dt, 0.0) / self.half_life_s)

    def worked(self, start: float, end: float) -> float:
        """Decayed worker-seconds, as of `end`, of one slot held from `start` to `end`."""
        h = self.half_life_s
        return h / math.log(2) * -math.expm1(-math.log(2) * max(end - start, 0.0) / h)

    def entries(self) -> dict[Owner, tuple[float, float]]:
        """``owner -> (value, as_of)`` of the finished work (what a store persists)."""
        return dict(self._done)

    def load(self, entries: Mapping[Owner, tuple[float, float]]) -> None:
        """Replace the finished work by stored ``owner -> (value, as_of)`` entries."""
        self._done = dict(entries)
        self._tenants = {}
        for owner, (value, as_of) in self._done.items():
            self._add(self._tenants, owner.tenant, value, as_of)

    def charge(self, owner: Owner, start: float, end: float) -> None:
        """Add the work of a job that ran from `start` to `end`."""
        self.add(owner, self.worked(start, end), end)

    def add(self, owner: Owner, worker_seconds: float, at: float) -> None:
        """Add decayed worker-seconds as of time `at`."""
        self._add(self._done, owner, worker_seconds, at)
        self._add(self._tenants, owner.tenant, worker_seconds, at)

    def _add(self, table: dict, key: object, worker_seconds: float, at: float) -> None:
        value, as_of = table.get(key, (0.0, at))
        if at >= as_of:
            table[key] = (self._decay(value, at - as_of) + worker_seconds, at)
        else:  # an older charge (e.g. replayed): decay it to the stored time instead
            table[key] = (value + self._decay(worker_seconds, as_of - at), as_of)

    def _value(self, entry: tuple[float, float] | None, now: float) -> float:
        if entry is None:
            return 0.0
        value, as_of = entry
        return self._decay(value, now - as_of) if now >= as_of else value

    def usage(self, owner: Owner, now: float, running_since: Iterable[float] = ()) -> float:
        """The owner's usage at `now`, with its running jobs started at `running_since`."""
        return self._value(self._done.get(owner), now) + sum(self.worked(s, now) for s in running_since)

    def tenant_usage(self, tenant: str, now: float) -> float:
        """The finished work of a tenant's users at `now` (running jobs not included)."""
        return self._value(self._tenants.get(tenant), now)


class RunningWork:
    """The running jobs of one owner or tenant, summed so their usage so far is O(1) to read:
    ``Σ H/ln2·(1 - 2^-((t-s_i)/H)) = H/ln2·(n - 2^-((t-r)/H)·Σ 2^((s_i-r)/H))`` for a reference r."""

    __slots__ = ("n", "ref", "total")

    def __init__(self) -> None:
        self.n, self.ref, self.total = 0, 0.0, 0.0

    def add(self, start: float, h: float, sign: int = 1) -> None:
        if self.n == 0:
            self.ref, self.total = start, 0.0
        self.n += sign
        self.total += sign * math.pow(2.0, (start - self.ref) / h)
        if self.n == 0:
            self.total = 0.0

    def work(self, now: float, h: float) -> float:
        if self.n == 0:
            return 0.0
        return max(h / math.log(2) * (self.n - math.pow(2.0, -(now - self.ref) / h) * self.total), 0.0)
