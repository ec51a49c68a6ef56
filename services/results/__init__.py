"""The results service: time series per job, stored in Parquet or InfluxDB, read back for comparison.

Server side: :class:`ResultsConfig`, :func:`create_server`, :func:`serve`, the :class:`SeriesStore`
protocol with :class:`ParquetStore` and :class:`InfluxStore`. CLI helpers: :func:`series_rows`,
:func:`export_csv`, :func:`plot_series`. The client side (:class:`ResultsClient`,
:class:`SeriesWriter`, the series model) is :mod:`workmesh.services.clients`, the layer the worker
SDK and the gateway use; the benchmark is in :mod:`workmesh.services.bench`.
"""

from workmesh.services.results._config import InfluxConfig, ResultsConfig
from workmesh.services.results._report import export_csv, plot_series, series_rows
from workmesh.services.results._server import SERVICE_NAME, create_server, create_store, serve
from workmesh.services.results.stores._influx import InfluxStore
from workmesh.services.results.stores._parquet import ParquetStore
from workmesh.services.results.stores._protocol import SeriesStore

__all__ = [
    "SERVICE_NAME",
    "InfluxConfig",
    "InfluxStore",
    "ParquetStore",
    "ResultsConfig",
    "SeriesStore",
    "create_server",
    "create_store",
    "export_csv",
    "plot_series",
    "serve",
    "series_rows",
]
