"""Fixtures of the benchmark tests: a real influxd for the series benchmark over InfluxDB."""

from tests.fixtures.influx import influxd  # noqa: F401 - session fixture used by test_series
