"""The results service: time series per job, stored in Parquet or InfluxDB, read back for comparison.

Server side: :class:`ResultsConfig`, :func:`create_server`, :func:`serve`, the :class:`SeriesStore`
protocol with :class:`ParquetStore` and :class:`InfluxStore`. Client side: :class:`ResultsClient`
and :class:`SeriesWriter` (what the worker SDK writes series with). CLI helpers:
:func:`series_rows`, :func:`export_csv`, :func:`plot_series` (the benchmark is in
:mod:`workmesh.services.bench`).
"""

from workmesh.services.clients._model import (
    MAX_CHUNK_BYTES,
    MAX_MESSAGE_BYTES,
    Chunk,
    ReadQuery,
    SeriesData,
    SeriesKey,
    SeriesSummary,
)
from workmesh.services.clients._results import ResultsClient, Series
from workmesh.services.clients._writer import BlockingSeriesWriter, SeriesHandle, SeriesWriter
from workmesh.services.results._config import InfluxConfig, ResultsConfig
from workmesh.services.results._report import export_csv, plot_series, series_rows
from workmesh.services.results._server import SERVICE_NAME, create_server, create_store, serve
from workmesh.services.results.stores._influx import InfluxStore
from workmesh.services.results.stores._parquet import ParquetStore
from workmesh.services.results.stores._protocol import SeriesStore

__all__ = [
    "MAX_CHUNK_BYTES",
    "MAX_MESSAGE_BYTES",
    "SERVICE_NAME",
    "BlockingSeriesWriter",
    "Chunk",
    "InfluxConfig",
    "InfluxStore",
    "ParquetStore",
    "ReadQuery",
    "ResultsClient",
    "ResultsConfig",
    "Series",
    "SeriesData",
    "SeriesHandle",
    "SeriesKey",
    "SeriesStore",
    "SeriesSummary",
    "SeriesWriter",
    "create_server",
    "create_store",
    "export_csv",
    "plot_series",
    "serve",
    "series_rows",
]
