"""Runtime estimates per workflow type and version, learned from finished jobs.

The model: ordinary least squares of log(runtime) on the log of the job's positive numeric
parameters (the raw value for a parameter that can be zero or negative), with the p50 and p90
taken from the empirical quantiles of the fit's residuals. Why this one:

- Runtimes of computations grow as a power of their problem size (buildings, components,
  time steps): a straight line in log–log space, which this fits and *extrapolates*. A nearest-
  neighbour model cannot predict past the largest run it has seen, which is exactly what a user
  trying a bigger variation asks about.
- Residual quantiles give an honest spread without assuming a distribution; quantile
  regression proper would need an LP solver or iterative reweighting for the same two numbers.
- It needs numpy only (already a dependency), and a fit over 10,000 runs is a single ``lstsq``
  of a few columns (well under a millisecond), cached until new runs arrive.

Fallbacks, each saying what it rests on: the type+version's own runs against their params;
then the quantiles of that version's runtimes; then the same over every version of the type;
then "unknown" with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["MIN_FIT_RUNS", "Estimate", "RuntimeModel"]

MIN_FIT_RUNS = 8  # runs before params are fitted (fewer: the runtimes' quantiles)
MIN_HISTORY_RUNS = 1
MAX_RUNS_PER_KEY = 10_000  # the newest runs kept per type+version (older behaviour fades out)
REFIT_EVERY = 0.05  # refit once the runs grew by 5% (and at least one run)


@dataclass(frozen=True)
class Estimate:
    """A runtime estimate. ``basis``: ``"params"`` (fitted against the job's parameters),
    ``"history"`` (the runtimes of past runs, parameters ignored) or ``"unknown"``."""

    p50_s: float | None
    p90_s: float | None
    runs: int
    basis: str
    reason: str = ""

    @property
    def known(self) -> bool:
        return self.p50_s is not None


@dataclass
class _Fit:
    n: int
    columns: tuple[tuple[str, bool], ...]  # (param, log-transformed)
    beta: np.ndarray
    q50: float
    q90: float


class _Runs:
    """The runs of one type+version: numeric params and runtimes, newest last."""

    def __init__(self) -> None:
        self.params: list[dict[str, float]] = []
        self.runtimes: list[float] = []
        self.fit: _Fit | None = None
        self.fitted_at = 0

    def add(self, params: Mapping[str, float], runtime_s: float) -> None:
        self.params.append(dict(params))
        self.runtimes.append(runtime_s)
        if len(self.runtimes) > MAX_RUNS_PER_KEY:
            drop = len(self.runtimes) - MAX_RUNS_PER_KEY
            del self.params[:drop], self.runtimes[:drop]


class RuntimeModel:
    """Learns runtimes of finished jobs and estimates new ones. Not thread-safe (one event loop)."""

    def __init__(self) -> None:
        self._runs: dict[tuple[str, str], _Runs] = {}
        self._typical: dict[str, Estimate] = {}  # per type, until its next run arrives

    def add(self, workflow_type: str, version: str, params: Mapping[str, float], runtime_s: float) -> None:
        """Record a finished run (`params`: its numeric parameters)."""
        if runtime_s is None or not math.isfinite(runtime_s) or runtime_s <= 0:
            return
        self._runs.setdefault((workflow_type, version), _Runs()).add(params, runtime_s)
        self._typical.pop(workflow_type, None)

    def runs(self, workflow_type: str, version: str | None = None) -> int:
        """How many runs are known for a type+version (or every version of the type)."""
        return sum(
            len(r.runtimes)
            for (t, v), r in self._runs.items()
            if t == workflow_type and (version is None or v == version)
        )

    def typical(self, workflow_type: str) -> Estimate:
        """The type's runtime quantiles over every version, parameters ignored."""
        cached = self._typical.get(workflow_type)
        if cached is not None:
            return cached
        times = [x for (t, _), r in self._runs.items() if t == workflow_type for x in r.runtimes]
        if not times:
            return Estimate(None, None, 0, "unknown", f"no finished run of {workflow_type!r} yet")
        cached = self._typical[workflow_type] = _quantiles(times, "history")
        return cached

    def estimate(self, workflow_type: str, version: str, params: Mapping[str, float]) -> Estimate:
        """p50/p90 runtime of a job of `workflow_type` `version` with numeric `params`."""
        own = self._runs.get((workflow_type, version))
        if own is not None and len(own.runtimes) >= MIN_FIT_RUNS:
            fit = self._fit(own)
            if fit is not None:
                x = _row(params, fit.columns)
                if x is not None:
                    mean = float(x @ fit.beta)
                    return Estimate(math.exp(mean + fit.q50), math.exp(mean + fit.q90), fit.n, "params")
        if own is not None and len(own.runtimes) >= MIN_HISTORY_RUNS:
            return _quantiles(own.runtimes, "history", f"too few runs of version {version} to fit its parameters")
        other = self.typical(workflow_type)
        if other.known:
            return Estimate(
                other.p50_s,
                other.p90_s,
                other.runs,
                "history",
                f"no finished run of version {version!r}: other versions' runtimes",
            )
        return Estimate(None, None, 0, "unknown", f"no finished run of {workflow_type!r} yet")

    @staticmethod
    def _fit(runs: _Runs) -> _Fit | None:
        n = len(runs.runtimes)
        if runs.fit is not None and n - runs.fitted_at < max(1, REFIT_EVERY * runs.fitted_at):
            return runs.fit
        runs.fitted_at = n
        names = sorted(set.intersection(*(set(p) for p in runs.params)))
        columns = []
        for name in names:
            values = np.array([p[name] for p in runs.params], dtype=float)
            if np.ptp(values) == 0:
                continue  # constant: says nothing about runtime
            columns.append((name, bool(np.all(values > 0))))
        # Keep the fit determined: at least four runs per coefficient.
        columns = columns[: max(0, n // 4 - 1)]
        if not columns:
            runs.fit = None
            return None
        x = np.array([_row(p, tuple(columns)) for p in runs.params])
        y = np.log(np.array(runs.runtimes))
        beta, *_ = np.linalg.lstsq(x, y, rcond=None)
        resid = y - x @ beta
        # In-sample residuals understate the spread of new runs: widen by n/(n-p) (the usual
        # degrees-of-freedom correction of a variance, applied to the deviations' scale).
        inflate = math.sqrt(n / max(n - x.shape[1], 1))
        q50, q90 = np.quantile(resid, [0.5, 0.9]) * inflate
        runs.fit = _Fit(n, tuple(columns), beta, float(q50), float(q90))
        return runs.fit


def _row(params: Mapping[str, float], columns: tuple[tuple[str, bool], ...]) -> np.ndarray | None:
    out = [1.0]
    for name, log in columns:
        value = params.get(name)
        if value is None:
            return None
        if log:
            if value <= 0:
                return None
            value = math.log(value)
        out.append(float(value))
    return np.array(out)


def _quantiles(times: list[float], basis: str, reason: str = "") -> Estimate:
    p50, p90 = np.quantile(np.array(times), [0.5, 0.9])
    return Estimate(float(p50), float(p90), len(times), basis, reason)
