"""The data of the series benchmarks: deterministic hourly profiles per component.

Here, next to the ``series-load`` example that writes them, so the worker layer does not import
the benchmarks (:mod:`workmesh.services.bench` reads them from here).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

HOUR_S = 3600

__all__ = ["HOUR_S", "bench_values", "write_bench_series"]


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


async def write_bench_series(writer: Any, components: int, fields: int, steps: int) -> int:
    """Write the benchmark series with a writer (a SeriesWriter, or a job context's series writer).

    Returns the number of values written. Timestamps are hourly, in seconds from 2030-01-01.
    """
    start = int(np.datetime64("2030-01-01T00:00:00", "s").astype(np.int64))
    ts = start + np.arange(steps, dtype=np.int64) * HOUR_S
    for component in range(components):
        await writer.series("bench", component=f"c{component:05d}").write(ts, **bench_values(component, fields, steps))
    return components * fields * steps
