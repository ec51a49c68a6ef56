"""``workmesh bench``: every benchmark of the mesh (dispatch, progress, discovery, series, http,
fairness, estimate).

Benchmarks measure and print figures; they assert nothing. They may import any layer.
"""

from workmesh.services.bench._dispatch import bench_dispatch
from workmesh.services.bench._estimate import bench_estimate
from workmesh.services.bench._fairness import bench_fairness
from workmesh.services.bench._http import bench_http
from workmesh.services.bench._progress import bench_progress
from workmesh.services.bench._series import bench_series

__all__ = [
    "bench_dispatch",
    "bench_estimate",
    "bench_fairness",
    "bench_http",
    "bench_progress",
    "bench_series",
]
