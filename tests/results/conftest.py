"""Fixtures of the results tests: each store adapter, over a real backend."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fixtures.disk import small_disk  # noqa: F401 - fixture of the disk-full tests
from tests.fixtures.influx import influxd, influxd_auth  # noqa: F401 - session fixtures
from workmesh.services.results import InfluxConfig, InfluxStore, ParquetStore, SeriesStore


@pytest.fixture(params=["parquet", "influx"])
def make_store(request, tmp_path) -> Callable[[], SeriesStore]:
    """A factory of the store under test (call it inside the test's event loop)."""
    if request.param == "parquet":
        return lambda: ParquetStore(tmp_path / "series")
    server = request.getfixturevalue("influxd")
    return lambda: InfluxStore(InfluxConfig(url=server.url))
