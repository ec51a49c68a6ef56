"""The messages of a ReadSeries call, encoded straight from the store's arrays.

Series come from the store in blocks of whole groups (one key from every job); each block's
groups are put on one time axis (:func:`aligned`) and encoded, chunked (``SeriesChunk``, see
:mod:`workmesh.services.clients._wire`) or packed when the request asks (``PackedSeries``, see
:mod:`workmesh.services.clients._packed`), into messages of about 4 MiB.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence

import numpy as np

from workmesh.services.clients._model import MAX_CHUNK_BYTES, SeriesData, ns_per
from workmesh.services.clients._packed import PackWriter, key_bytes
from workmesh.services.clients._wire import chunk_pieces, encode_key
from workmesh.v1 import results_pb2

__all__ = ["aligned", "response_messages", "with_values"]

RESPONSE_BYTES = 4 << 20  # series are packed into messages of about this size


async def response_messages(
    blocks: AsyncIterator[list[SeriesData]], job_ids: Sequence[str], unit: int, *, packed: bool = False
) -> AsyncGenerator[bytes, None]:
    """The ReadSeriesResponse messages (bytes) of the store's `blocks`, series in the order of `job_ids`."""
    scale = ns_per(unit)
    order = {job_id: i for i, job_id in enumerate(job_ids)}
    writer = PackWriter(RESPONSE_BYTES) if packed else None
    rests: dict[tuple, bytes] = {}  # (measurement, tags) -> the serialized rest of their keys
    pieces: list = []
    size = 0
    async with contextlib.aclosing(_closable(blocks)) as stream:  # stopped early: the read ends at once
        async for block in stream:
            found = with_values(block)
            found.sort(key=lambda s: (s.key.measurement, s.key.tags, order[s.key.job_id]))
            for series in aligned(found):
                ts = series.timestamps // scale if scale != 1 else series.timestamps
                step = series.step if scale == 1 else 0
                per = max(1, MAX_CHUNK_BYTES // (8 * (1 + len(series.fields))))
                if writer is not None:
                    group = (series.key.measurement, series.key.tags)
                    rest = rests.get(group)
                    if rest is None:
                        rest = rests[group] = results_pb2.SeriesKey(
                            measurement=group[0], tags=dict(group[1])
                        ).SerializeToString()
                    key = key_bytes(series.key.job_id, rest)
                    for lo in range(0, len(ts), per):
                        whole = lo == 0 and len(ts) <= per
                        fields = series.fields if whole else {k: v[lo : lo + per] for k, v in series.fields.items()}
                        message = writer.add(key, ts if whole else ts[lo : lo + per], fields, series.units, step=step)
                        if message is not None:
                            yield message
                    continue
                key_field = encode_key(series.key)
                for lo in range(0, len(ts), per):
                    more, n = chunk_pieces(
                        key_field,
                        ts[lo : lo + per],
                        {k: v[lo : lo + per] for k, v in series.fields.items()},
                        series.units,
                        unit,
                        step=step,
                    )
                    pieces += more
                    size += n
                    if size >= RESPONSE_BYTES:
                        yield b"".join(pieces)
                        pieces, size = [], 0
    if writer is not None:
        last = writer.finish()
        if last is not None:
            yield last
    elif pieces:
        yield b"".join(pieces)


async def _closable(blocks: AsyncIterator[list[SeriesData]]) -> AsyncGenerator[list[SeriesData], None]:
    try:
        async for block in blocks:
            yield block
    finally:
        close = getattr(blocks, "aclose", None)
        if close is not None:
            await close()


def with_values(found: Sequence[SeriesData]) -> list[SeriesData]:
    """Leave out fields without any value in the range read, and series left without fields.

    Both stores then answer alike: InfluxDB cannot tell a field a series never had from one
    that is missing (NaN) over the whole range.
    """
    out = []
    for series in found:
        # a first value that is not NaN settles it without a pass over the array
        series.fields = {
            n: v for n, v in series.fields.items() if len(v) and (not np.isnan(v[0]) or not np.isnan(v).all())
        }
        if series.fields:
            out.append(series)
    return out


def aligned(found: Sequence[SeriesData]) -> list[SeriesData]:
    """Put series with the same measurement and tags (from different jobs) on one time axis (keeps order)."""
    groups: dict[tuple, list[SeriesData]] = {}
    for series in found:
        groups.setdefault((series.key.measurement, series.key.tags), []).append(series)
    out: list[SeriesData] = []
    for group in groups.values():
        axis = group[0].timestamps
        # the jobs' regular times are one shared array (see regular_axis): `is` settles most groups
        if any(
            s.timestamps is not axis and (len(s.timestamps) != len(axis) or not np.array_equal(s.timestamps, axis))
            for s in group[1:]
        ):
            axis = np.unique(np.concatenate([s.timestamps for s in group]))
            for series in group:
                if len(series.timestamps) == len(axis):
                    continue
                pos = np.searchsorted(axis, series.timestamps)
                fields = {}
                for name, values in series.fields.items():
                    full = np.full(len(axis), np.nan)
                    full[pos] = values
                    fields[name] = full
                series.timestamps, series.fields, series.step = axis, fields, 0
        out.extend(group)
    return out
