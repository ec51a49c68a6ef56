"""The CLI helpers: series listing rows, CSV export and the PNG chart comparing jobs."""

from __future__ import annotations

import csv
import io
import struct

import numpy as np
import pytest

from tests.results.support import HOUR, new_job, serving
from tests.support import run
from workmesh.services.core.errors import NotFound
from workmesh.services.results import ParquetStore, export_csv, plot_series, series_rows

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


async def two_variations(client) -> tuple[str, str]:
    base, variant = new_job(), new_job()
    t = np.arange(24 * 14) * HOUR
    for job, scale in ((base, 1.0), (variant, 1.3)):
        writer = client.writer(job)
        await writer.series("heat", asset="b1", units={"Q": "kW"}).write(
            t, Q=scale * (50 + 30 * np.sin(2 * np.pi * np.arange(len(t)) / 24))
        )
        await writer.close()
    return base, variant


def test_series_rows(tmp_path):
    async def scenario():
        async with serving(ParquetStore(tmp_path)) as client:
            base, _ = await two_variations(client)
            rows = await series_rows(client, base)
            assert rows == [
                {
                    "measurement": "heat",
                    "tags": {"asset": "b1"},
                    "fields": ["Q"],
                    "units": {"Q": "kW"},
                    "count": 336,
                    "start": "1970-01-01T00:00:00Z",
                    "end": "1970-01-14T23:00:00Z",
                    "start_ns": 0,
                    "end_ns": 335 * HOUR,
                }
            ]

    run(scenario())


def test_export_csv_of_two_jobs(tmp_path):
    async def scenario():
        async with serving(ParquetStore(tmp_path)) as client:
            base, variant = await two_variations(client)
            out = io.StringIO()
            assert await export_csv(client, [base, variant], "Q", out) == 336
            rows = list(csv.reader(io.StringIO(out.getvalue())))
            assert rows[0] == ["time", "time_ns", f"{base}:heat,asset=b1 [kW]", f"{variant}:heat,asset=b1 [kW]"]
            assert rows[1] == ["1970-01-01T00:00:00Z", "0", "50.0", "65.0"]
            assert len(rows) == 337
            with pytest.raises(NotFound, match="no series with field 'X'"):
                await export_csv(client, base, "X", io.StringIO())

    run(scenario())


def test_plot_png_compares_jobs(tmp_path):
    async def scenario():
        async with serving(ParquetStore(tmp_path / "series")) as client:
            base, variant = await two_variations(client)
            return await plot_series(
                client, [base, variant], "Q", tmp_path / "q.png", size=(8, 4), dpi=100, title="Q of two variations"
            )

    path = run(scenario())
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert (width, height) == (800, 400)
