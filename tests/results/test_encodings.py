"""Parquet field encodings: PLAIN when uncompressed, byte-stream-split with a codec; a job holding
parts of both kinds (written before and after the default changed) reads back whole."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from tests.results.support import HOUR, new_job
from tests.support import run
from workmesh.services.clients import Chunk, ReadQuery, SeriesKey
from workmesh.services.results import ParquetStore


def _encodings(store: ParquetStore, job: str) -> list[set[str]]:
    """The encodings of field f in each part of the job, in the order the parts were written."""
    found = []
    for path in sorted((store.root / job).rglob("part-*.parquet")):
        meta = pq.ParquetFile(path).metadata
        col = meta.schema.to_arrow_schema().get_field_index("f")
        found.append(set(meta.row_group(0).column(col).encodings))
    return found


def test_parts_of_both_encodings_read_back_as_written(tmp_path):
    async def scenario():
        job = new_job()
        ts = np.arange(48, dtype=np.int64) * HOUR
        values = {c: np.round(np.sin(np.arange(48) / 5.0 + c), 3) for c in range(3)}
        old = ParquetStore(tmp_path, compression="zstd")  # byte-stream-split, as parts were written before
        new = ParquetStore(tmp_path)  # PLAIN
        for store, half in ((old, slice(0, 24)), (new, slice(24, 48))):
            await store.write(
                [
                    Chunk(SeriesKey(job, "m", (("c", str(c)),)), ts[half], {"f": v[half], "g": -v[half]})
                    for c, v in values.items()
                ]
            )
        first, second = _encodings(new, job)
        assert "BYTE_STREAM_SPLIT" in first
        assert "PLAIN" in second and "BYTE_STREAM_SPLIT" not in second
        read = await new.read([ReadQuery(job, fields=("f",))])
        assert [s.key.tags for s in read] == [(("c", str(c)),) for c in range(3)]
        for series, (_c, v) in zip(read, values.items(), strict=True):
            np.testing.assert_array_equal(series.timestamps, ts)
            assert list(series.fields) == ["f"]
            np.testing.assert_array_equal(series.fields["f"], v)

    run(scenario())
