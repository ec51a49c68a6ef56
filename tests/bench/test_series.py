"""The series benchmark runs end to end at a tiny size (its figures are not judged here)."""

from __future__ import annotations

from tests.support import run
from workmesh.services.bench import bench_series
from workmesh.services.bench._series_compare import bench_small_batches


def test_bench_parquet_small():
    lines: list[str] = []
    figures = run(bench_series("parquet", components=3, fields=2, steps=48, out=lines.append))
    assert figures["values"] == 3 * 2 * 48 and figures["read_values"] == 3 * 48
    assert figures["server_peak_rss_bytes"] > 0
    assert any("M values/s" in line for line in lines)


def test_bench_parquet_variations_and_small_batches():
    lines: list[str] = []
    figures = run(
        bench_series("parquet", components=3, fields=2, steps=48, variations=3, reads=3, worker=False, out=lines.append)
    )
    assert figures["compare_values"] == 3 * 3 * 48 and figures["compare_s"] > 0
    assert len(figures["read_runs_s"]) == 3 and len(figures["compare_runs_s"]) == 3
    assert figures["compare_s"] == sorted(figures["compare_runs_s"])[1]
    assert any("median of 3" in line for line in lines)
    assert any("compare field f0 of 3 variations" in line for line in lines)
    small = run(bench_small_batches(30, components=3, steps=48, out=lines.append))
    assert (small["batches"], small["parts_before"], small["parts_after"]) == (30, 30, 1)
    assert any("before compaction" in line for line in lines)


def test_bench_influx_small(influxd):
    lines: list[str] = []
    figures = run(bench_series("influx", components=3, fields=2, steps=48, influx_url=influxd.url, out=lines.append))
    assert figures["read_values"] == 3 * 48 and figures["ratio"] > 0
    assert any("direct line-protocol ingest" in line for line in lines)
