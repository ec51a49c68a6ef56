"""The InfluxDB series store, through the v1 HTTP API (served by 1.x, and by 2.x/3.x as v1 compatibility).

Layout: one database per job (``db_prefix + job_id``; delete = ``DROP DATABASE``, access can be
granted per job), measurement, tags and fields as written. Field units live in the job's
database as points of ``_workmesh_units`` (tags ``measurement``, ``field``; string field
``unit``), since InfluxDB has no column metadata.

Writes: a batch becomes /write requests of at least ``batch_lines`` lines (chunks are grouped),
formatted in a thread (see :mod:`._lineproto`), ``writers`` requests in flight, gzip when it
pays (not on loopback), precision = the unit the worker used. A request is retried on 5xx or a
lost connection (points are idempotent). If a batch fails or is cancelled, the points it may
have written are deleted again (``DELETE ... WHERE tags AND time in the batch's range``) once
the requests in flight have finished.
Differences to Parquet: a timestamp written again to a series overwrites the old point instead
of being rejected; the count of a series is the largest count of its fields.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Sequence
from urllib.parse import urlsplit

import aiohttp
import numpy as np
import structlog

from workmesh.services.clients._model import Chunk, ReadQuery, SeriesData, SeriesKey, SeriesSummary, check_job_id
from workmesh.services.core.errors import InvalidArgument, NotFound, Unavailable
from workmesh.services.results._config import InfluxConfig
from workmesh.services.results.stores._influx_readers import InfluxReaders
from workmesh.services.results.stores._influx_tombstones import InfluxTombstones
from workmesh.services.results.stores._lineproto import PRECISION, encode_lines, escape_key, ident, literal

UNITS = "_workmesh_units"
MIN_TIME, MAX_TIME = -9223372036854775806, 9223372036854775806
_AGG_FN = {"mean": "mean", "min": "min", "max": "max", "last": "last"}
log = structlog.get_logger("workmesh.results.influx")


class InfluxStore:
    """Series in InfluxDB (see the module docstring). Create it inside the event loop that uses it."""

    kind = "influxdb"

    def __init__(self, config: InfluxConfig) -> None:
        self.config = config
        self.host = config.url
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None
        self._databases: set[str] = set()
        self._units: set[tuple[str, str, str, str]] = set()
        self.tombstones = InfluxTombstones(self)
        self.readers = InfluxReaders(self)  # external readers: a user per reader of a job
        host = urlsplit(config.url).hostname or ""
        loopback = host in ("localhost", "::1") or host.startswith("127.")
        self.gzip = config.gzip == "on" or (config.gzip == "auto" and not loopback)

    def database(self, job_id: str) -> str:
        return self.config.db_prefix + job_id

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- HTTP ------------------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.timeout),
                connector=aiohttp.TCPConnector(limit=self.config.writers + 4),
            )
            self._slots = asyncio.Semaphore(self.config.writers)
        return self._session

    def _auth(self) -> dict[str, str]:
        return {"u": self.config.username, "p": self.config.password} if self.config.username else {}

    async def query(self, q: str, db: str = "") -> list[dict]:
        """Run InfluxQL statements; returns one result per statement (raises on any error)."""
        results: dict[int, dict] = {}
        async for statement, series in self.query_stream(q, db):
            results.setdefault(statement, {"series": []})["series"].append(series)
        return [results.get(i, {"series": []}) for i in range(q.count(";") + 1)]

    async def query_stream(self, q: str, db: str = "", chunk_rows: int = 10_000) -> AsyncIterator[tuple[int, dict]]:
        """Run InfluxQL and yield (statement id, series piece) as the chunked response arrives.

        A series may come in several pieces of at most `chunk_rows` rows, so a large read is
        never held as one JSON document.
        """
        params = {"epoch": "ns", "chunked": "true", "chunk_size": str(chunk_rows), **self._auth()}
        if db:
            params["db"] = db
        try:
            async with self._http().post(f"{self.config.url}/query", params=params, data={"q": q}) as resp:
                if resp.status >= 500:
                    raise Unavailable(
                        f"InfluxDB at {self.config.url} answered {resp.status}: {(await resp.read())[:300]!r}"
                    )
                rest = b""
                async for block in resp.content.iter_chunked(1 << 20):
                    lines = (rest + block).split(b"\n")
                    rest = lines.pop()
                    for line in lines:
                        for item in _documents(line):
                            yield item
                for item in _documents(rest):
                    yield item
        except aiohttp.ClientError as exc:
            raise Unavailable(f"InfluxDB at {self.config.url} cannot be reached: {exc}") from exc
        except TimeoutError as exc:  # aiohttp's total timeout: a busy or hung server, not our bug
            raise Unavailable(self._late("query")) from exc

    async def _post_lines(self, db: str, precision: str, body: bytes) -> None:
        params = {"db": db, "precision": precision, **self._auth()}
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.gzip:
            body = await asyncio.to_thread(gzip.compress, body, 1)
            headers["Content-Encoding"] = "gzip"
        for attempt in range(4):
            try:
                async with self._http().post(
                    f"{self.config.url}/write", params=params, data=body, headers=headers
                ) as resp:
                    if resp.status == 204:
                        return
                    text = (await resp.text())[:500]
                    if resp.status == 404 and "database not found" in text:  # dropped meanwhile
                        await self._create(db)
                        error: Exception = Unavailable(f"InfluxDB database {db!r} vanished during the write")
                        continue
                    if resp.status < 500:
                        raise InvalidArgument("chunk", f"InfluxDB rejected the write ({resp.status}): {text}")
                    error = Unavailable(f"InfluxDB write failed ({resp.status}): {text}")
            except aiohttp.ClientError as exc:
                error = Unavailable(f"InfluxDB at {self.config.url} cannot be reached: {exc}")
            except TimeoutError as exc:
                # not retried: another `timeout` seconds per attempt would hold the writer for minutes
                raise Unavailable(self._late("write")) from exc
            await asyncio.sleep(0.2 * 2**attempt)
        raise error

    def _late(self, what: str) -> str:
        return (
            f"InfluxDB at {self.config.url} did not answer a {what} within {self.config.timeout:g} s "
            "(InfluxConfig.timeout); try again later"
        )

    async def _create(self, db: str) -> None:
        await self.query(f"CREATE DATABASE {ident(db)}")
        await self.readers.regrant(db)  # a database made anew has lost its grants
        self._databases.add(db)

    async def _known_databases(self) -> set[str]:
        result = await self.query("SHOW DATABASES")
        return {row[0] for s in result[0]["series"] for row in s.get("values") or []}

    async def _require(self, job_id: str) -> str:
        db = self.database(check_job_id(job_id))
        if db not in await self._known_databases():
            raise NotFound(f"job {job_id!r} has no series (no InfluxDB database {db!r})")
        return db

    # -- write -----------------------------------------------------------------------------------

    async def write(self, batch: Sequence[Chunk]) -> None:
        if not batch:
            return
        db = self.database(check_job_id(batch[0].key.job_id))
        if db not in self._databases:
            await self._create(db)
        self._http()
        slots = self._slots
        assert slots is not None  # made with the session, for the session's event loop
        pending: set[asyncio.Task] = set()
        try:
            await self._write_units(db, batch)
            for group in _groups(batch, self.config.batch_lines):
                body = await asyncio.to_thread(_encode_group, group)
                if not body:
                    continue
                await slots.acquire()  # back-pressure: at most `writers` requests in flight
                task = asyncio.create_task(self._post_lines(db, PRECISION[group[0].time_unit], body))
                task.add_done_callback(lambda _: slots.release())
                pending.add(task)
                for done in [t for t in pending if t.done()]:
                    pending.discard(done)
                    done.result()  # a failed request fails the batch now
            await asyncio.gather(*pending)
        except BaseException:
            # InfluxDB may still apply a request we stopped waiting for, after a DELETE sent now:
            # let the requests in flight finish (bounded), then delete what the batch wrote.
            await asyncio.shield(self._undo(db, batch, pending))
            raise

    async def _undo(self, db: str, batch: Sequence[Chunk], pending: set[asyncio.Task]) -> None:
        if pending:
            finished, late = await asyncio.wait(pending, timeout=self.config.timeout)
            for task in late:
                task.cancel()
            for task in finished:  # their errors are the batch's error, already being raised
                if not task.cancelled():
                    task.exception()
        await self._rollback(db, batch)

    async def _write_units(self, db: str, batch: Sequence[Chunk]) -> None:
        lines, markers = [], set()
        for chunk in batch:
            for name, unit in chunk.units.items():
                marker = (db, chunk.key.measurement, name, unit)
                if marker not in self._units and marker not in markers:
                    markers.add(marker)
                    value = unit.replace("\\", "\\\\").replace('"', '\\"')
                    lines.append(
                        f"{UNITS},field={escape_key(name)},measurement={escape_key(chunk.key.measurement)} "
                        f'unit="{value}" 0'
                    )
        if lines:
            await self._post_lines(db, "n", ("\n".join(lines) + "\n").encode())
            self._units |= markers

    async def _rollback(self, db: str, batch: Sequence[Chunk]) -> None:
        spans: dict[SeriesKey, list[int]] = {}
        for chunk in batch:
            span = spans.setdefault(chunk.key, [int(chunk.timestamps[0]), int(chunk.timestamps[-1])])
            span[0] = min(span[0], int(chunk.timestamps[0]))
            span[1] = max(span[1], int(chunk.timestamps[-1]))
        statements = [
            f"DELETE FROM {ident(key.measurement)} WHERE "
            + " AND ".join([*(f"{ident(k)} = {literal(v)}" for k, v in key.tags), f"time >= {lo} AND time <= {hi}"])
            for key, (lo, hi) in spans.items()
        ]
        try:
            for i in range(0, len(statements), 100):
                await self.query(";".join(statements[i : i + 100]), db)
        except Exception as exc:  # noqa: BLE001 - report and keep the original error
            log.error("rollback of a failed batch failed; unacknowledged points may remain", db=db, error=str(exc))

    # -- read, list, delete ----------------------------------------------------------------------

    async def _fields(self, db: str, measurement: str = "") -> dict[str, list[str]]:
        """Measurement -> field keys (without the units catalogue)."""
        q = "SHOW FIELD KEYS" + (f" FROM {ident(measurement)}" if measurement else "")
        result = await self.query(q, db)
        return {s["name"]: [row[0] for row in s.get("values") or []] for s in result[0]["series"] if s["name"] != UNITS}

    async def _units_of(self, db: str) -> dict[tuple[str, str], str]:
        result = await self.query(f"SELECT last(unit) AS unit FROM {ident(UNITS)} GROUP BY *", db)
        return {(s["tags"]["measurement"], s["tags"]["field"]): s["values"][0][1] for s in result[0]["series"]}

    async def read(self, queries: Sequence[ReadQuery]) -> list[SeriesData]:
        out: list[SeriesData] = []
        for query in queries:
            db = await self._require(query.job_id)
            units = await self._units_of(db)
            for measurement, fields in (await self._fields(db, query.measurement)).items():
                wanted = [f for f in fields if not query.fields or f in query.fields]
                if wanted:
                    out.extend(await self._read_measurement(db, query, measurement, wanted, units))
        out.sort(key=lambda s: s.key)
        return out

    async def _read_measurement(
        self, db: str, query: ReadQuery, measurement: str, fields: list[str], units: dict[tuple[str, str], str]
    ) -> list[SeriesData]:
        where = [f"{ident(k)} = {literal(v)}" for k, v in query.tags]
        where.append(f"time >= {MIN_TIME if query.start is None else query.start}")
        where.append(f"time < {MAX_TIME if query.end is None else query.end}")
        if query.window:
            fn = _AGG_FN[query.aggregate]
            select = ", ".join(f"{fn}({ident(f)}) AS {ident(f)}" for f in fields)
            group = f"GROUP BY time({query.window}ns), * fill(none)"
        else:
            select, group = ", ".join(ident(f) for f in fields), "GROUP BY *"
        q = f"SELECT {select} FROM {ident(measurement)} WHERE {' AND '.join(where)} {group}"
        pieces: dict[tuple, list[tuple[np.ndarray, np.ndarray]]] = {}
        columns: dict[tuple, list[str]] = {}
        async for _, s in self.query_stream(q, db):
            rows = s.get("values") or []
            if not rows:
                continue
            tags = tuple(sorted((k, v) for k, v in (s.get("tags") or {}).items() if v))
            # times separately: ns timestamps do not fit a float64 exactly
            times = np.fromiter((r[0] for r in rows), np.int64, len(rows))
            block = np.array([r[1:] for r in rows], dtype=np.float64).reshape(len(rows), -1)
            pieces.setdefault(tags, []).append((times, block))
            columns[tags] = s["columns"][1:]
        out = []
        for tags, parts in pieces.items():
            ts = np.concatenate([p[0] for p in parts])
            matrix = np.concatenate([p[1] for p in parts])
            values = {name: np.ascontiguousarray(matrix[:, i]) for i, name in enumerate(columns[tags])}
            key = SeriesKey(query.job_id, measurement, tags)
            out.append(
                SeriesData(key, ts, values, {n: units[(measurement, n)] for n in values if (measurement, n) in units})
            )
        return out

    async def list_series(self, job_id: str) -> list[SeriesSummary]:
        db = await self._require(job_id)
        units = await self._units_of(db)
        by_measurement = await self._fields(db)
        stats: dict[tuple[str, tuple], dict] = {}
        for measurement, fields in by_measurement.items():
            statements = [
                f"SELECT {', '.join(f'count({ident(f)}) AS {ident(f)}' for f in fields)} "
                f"FROM {ident(measurement)} GROUP BY *"
            ]
            for f in fields:
                statements.append(f"SELECT first({ident(f)}) FROM {ident(measurement)} GROUP BY *")
                statements.append(f"SELECT last({ident(f)}) FROM {ident(measurement)} GROUP BY *")
            results = await self.query(";".join(statements), db)
            for i, result in enumerate(results):
                for s in result["series"]:
                    tags = tuple(sorted((k, v) for k, v in (s.get("tags") or {}).items() if v))
                    entry = stats.setdefault(
                        (measurement, tags), {"fields": set(), "count": 0, "start": None, "end": None}
                    )
                    row = s["values"][0]
                    if i == 0:
                        counts = dict(zip(s["columns"][1:], row[1:], strict=True))
                        entry["fields"].update(f for f, c in counts.items() if c)
                        entry["count"] = max(c or 0 for c in counts.values())
                    elif i % 2 == 1:
                        entry["start"] = row[0] if entry["start"] is None else min(entry["start"], row[0])
                    else:
                        entry["end"] = row[0] if entry["end"] is None else max(entry["end"], row[0])
        out = []
        for (measurement, tags), e in stats.items():
            if not e["fields"]:
                continue
            present = tuple(f for f in by_measurement[measurement] if f in e["fields"])
            out.append(
                SeriesSummary(
                    SeriesKey(job_id, measurement, tags),
                    present,
                    e["count"],
                    e["start"],
                    e["end"],
                    {f: units[(measurement, f)] for f in present if (measurement, f) in units},
                )
            )
        out.sort(key=lambda s: s.key)
        return out

    async def delete(self, job_id: str) -> int:
        db = await self._require(job_id)
        result = await self.query("SHOW SERIES", db)
        count = sum(
            1 for s in result[0]["series"] for row in s.get("values") or [] if not row[0].startswith(UNITS + ",")
        )
        await self.query(f"DROP DATABASE {ident(db)}")
        self._databases.discard(db)
        self._units = {u for u in self._units if u[0] != db}
        return count


def _documents(line: bytes) -> list[tuple[int, dict]]:
    """The (statement id, series) pieces of one JSON document of a chunked /query response."""
    if not line.strip():
        return []
    doc = json.loads(line)
    if "error" in doc:
        raise InvalidArgument("query", f"InfluxDB: {doc['error']}")
    out: list[tuple[int, dict]] = []
    for result in doc.get("results", []):
        if "error" in result:
            raise InvalidArgument("query", f"InfluxDB: {result['error']}")
        out.extend((result.get("statement_id", 0), s) for s in result.get("series", []))
    return out


def _groups(batch: Sequence[Chunk], lines: int) -> list[list[Chunk]]:
    """Consecutive chunks of one time unit, grouped to at least `lines` lines per request."""
    groups: list[list[Chunk]] = []
    size = 0
    for chunk in batch:
        if groups and size < lines and groups[-1][0].time_unit == chunk.time_unit:
            groups[-1].append(chunk)
            size += len(chunk)
        else:
            groups.append([chunk])
            size = len(chunk)
    return groups


def _encode_group(group: list[Chunk]) -> bytes:
    bodies = [encode_lines(chunk)[0] for chunk in group]
    return bodies[0] if len(bodies) == 1 else b"".join(bodies)
