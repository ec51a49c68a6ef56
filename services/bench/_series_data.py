"""The data of the series benchmarks: deterministic hourly profiles per component."""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["bench_values"]


def bench_values(component: int, fields: int, steps: int) -> dict[str, np.ndarray]:
    """Deterministic, realistic-looking hourly profiles of one component (daily and yearly cycles).

    Components come in 97 sizes; their profiles are computed once, so producing the data costs
    the benchmark next to nothing and the figures measure the results service.
    """
    return _profiles(component % 97, fields, steps)


@functools.lru_cache(maxsize=128)
def _profiles(size: int, fields: int, steps: int) -> dict[str, np.ndarray]:
    hours = np.arange(steps, dtype=np.float64)
    daily = np.sin(2 * np.pi * hours / 24)
    yearly = np.cos(2 * np.pi * hours / 8760)
    scale = 10.0 + size
    return {
        f"f{j}": np.round(scale * (1.0 + 0.3 * daily * (j + 1) / fields + 0.5 * yearly) + j, 3) for j in range(fields)
    }
