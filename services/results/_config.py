"""Configuration of the results service, read from the environment once at process start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from workmesh.registry import RegistryConfig
from workmesh.services.core import env as envvars
from workmesh.services.core.auth import AuthConfig
from workmesh.services.core.errors import InvalidArgument
from workmesh.services.core.net import advertise_host, split_host_port
from workmesh.services.core.tls import TlsConfig

STORES = ("parquet", "influx")
COMPRESSIONS = ("none", "lz4", "zstd")


@dataclass(frozen=True)
class InfluxConfig:
    """How to reach InfluxDB through its v1 HTTP API.

    Attributes:
        url: base URL, e.g. ``http://127.0.0.1:8086`` (env ``INFLUX_URL``).
        username, password: v1 credentials (``INFLUX_USERNAME``/``INFLUX_PASSWORD``); with
            InfluxDB 2.x/3.x v1-compatible endpoints the password is the token.
        db_prefix: database name = prefix + job id (``INFLUX_DB_PREFIX``, default empty).
        batch_lines: lines per /write request (``INFLUX_BATCH_LINES``, at least 5,000).
        writers: /write requests in flight at once (``INFLUX_WRITERS``).
        gzip: ``"auto"`` (compress unless InfluxDB is on loopback, where it costs more CPU
            than it saves), ``"on"`` or ``"off"`` (``INFLUX_GZIP``).
        timeout: seconds per HTTP request.
    """

    url: str = "http://127.0.0.1:8086"
    username: str = ""
    password: str = field(default="", repr=False)
    db_prefix: str = ""
    batch_lines: int = 10_000
    writers: int = 4
    gzip: str = "auto"
    timeout: float = 120.0

    def __post_init__(self) -> None:
        if self.batch_lines < 5_000:
            raise InvalidArgument("INFLUX_BATCH_LINES", "must be at least 5000")
        if self.writers < 1:
            raise InvalidArgument("INFLUX_WRITERS", "must be at least 1")
        if self.gzip not in ("auto", "on", "off"):
            raise InvalidArgument("INFLUX_GZIP", "must be auto, on or off")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> InfluxConfig:
        env = os.environ if environ is None else environ
        return cls(
            url=env.get("INFLUX_URL", cls.url).rstrip("/"),
            username=env.get("INFLUX_USERNAME", ""),
            password=env.get("INFLUX_PASSWORD", ""),
            db_prefix=env.get("INFLUX_DB_PREFIX", ""),
            batch_lines=envvars.integer(env, "INFLUX_BATCH_LINES", cls.batch_lines, minimum=5_000),
            writers=envvars.integer(env, "INFLUX_WRITERS", cls.writers, minimum=1),
            gzip=envvars.choice(env, "INFLUX_GZIP", cls.gzip, ("auto", "on", "off")),
        )


@dataclass(frozen=True)
class ResultsConfig:
    """Settings of one results service process.

    Attributes:
        listen: ``host:port`` to bind (``WORKMESH_RESULTS_ADDR``; port 0 picks a free one).
        advertise_host: the host put into the registry and into Parquet SeriesRefs
            (``WORKMESH_RESULTS_ADVERTISE``; default: the listen host, 127.0.0.1 for 0.0.0.0).
        store: ``"parquet"`` or ``"influx"`` (``WORKMESH_RESULTS_STORE``).
        data_dir: the Parquet data directory (``WORKMESH_RESULTS_DIR``, else
            ``$WORKMESH_DATA_DIR/series``, else ``.workmesh/series`` like the gateway's job store).
        influx: InfluxDB settings (``INFLUX_*``).
        registry: where to register as ``workmesh-results`` (``CONSUL_HTTP_ADDR``, with
            ``CONSUL_HTTP_TOKEN``; default 127.0.0.1:8500 as for every service); None means don't.
        batch_values: values (timestamps x fields) buffered per WriteSeries call before a batch
            is stored and acknowledged (``WORKMESH_RESULTS_BATCH_VALUES``).
        fsync: fsync Parquet files before acknowledging.
        compaction_delay: seconds after a job's last write call before its small Parquet parts
            are compacted (``WORKMESH_RESULTS_COMPACTION_DELAY``); negative: never.
        compression: codec of the Parquet field columns (``WORKMESH_RESULTS_COMPRESSION``):
            ``none`` (fastest to write and read), ``lz4`` or ``zstd`` (about 22% smaller).
        grace: seconds to let calls finish on shutdown.
        tls: the server's certificate and key (``WORKMESH_TLS_CERT``/``_KEY``): TLS when set.
        auth: authentication (``WORKMESH_AUTH``, the ``WORKMESH_JWT_*`` variables and
            ``WORKMESH_SERIES_KEY``, see :class:`~workmesh.services.core.auth.AuthConfig`);
            off by default.
        gateway: the gateway asked whether a caller may read a shared job's series
            (``WORKMESH_RESULTS_GATEWAY``); empty: the ``workmesh-gateway`` found in the registry.
        local_reads: hand callers on this host the Parquet files of a read that asks for it
            (``WORKMESH_RESULTS_LOCAL_READS``, on by default; see :mod:`workmesh.services.results._local`).
    """

    listen: str = "127.0.0.1:50052"
    advertise_host: str = ""
    store: str = "parquet"
    data_dir: Path = Path(".workmesh/series")
    influx: InfluxConfig = field(default_factory=InfluxConfig)
    registry: RegistryConfig | None = None
    batch_values: int = 8_000_000
    fsync: bool = True
    compaction_delay: float = 2.0
    compression: str = "none"
    grace: float = 10.0
    tls: TlsConfig = field(default_factory=TlsConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    gateway: str = ""
    local_reads: bool = True

    def __post_init__(self) -> None:
        if self.store not in STORES:
            raise InvalidArgument("store", f"must be one of {', '.join(STORES)}, got {self.store!r}")
        if self.compression not in COMPRESSIONS:
            raise InvalidArgument("compression", f"must be one of {', '.join(COMPRESSIONS)}, got {self.compression!r}")
        if self.batch_values < 1:
            raise InvalidArgument("batch_values", "must be positive")
        host, sep, port = self.listen.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise InvalidArgument("listen", f"must be host:port, got {self.listen!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ResultsConfig:
        """Read the configuration from the environment (see the attributes for the names)."""
        env = os.environ if environ is None else environ
        if env.get("WORKMESH_RESULTS_DIR"):
            data_dir = Path(env["WORKMESH_RESULTS_DIR"])
        elif env.get("WORKMESH_DATA_DIR"):
            data_dir = Path(env["WORKMESH_DATA_DIR"]) / "series"
        else:
            data_dir = cls.data_dir
        return cls(
            listen=envvars.host_port(env, "WORKMESH_RESULTS_ADDR", cls.listen),
            advertise_host=envvars.text(env, "WORKMESH_RESULTS_ADVERTISE"),
            store=envvars.choice(env, "WORKMESH_RESULTS_STORE", cls.store, STORES),
            batch_values=envvars.integer(env, "WORKMESH_RESULTS_BATCH_VALUES", cls.batch_values, minimum=1),
            compression=envvars.choice(env, "WORKMESH_RESULTS_COMPRESSION", cls.compression, COMPRESSIONS),
            compaction_delay=envvars.seconds(
                env, "WORKMESH_RESULTS_COMPACTION_DELAY", cls.compaction_delay, minimum=None
            ),
            data_dir=data_dir,
            influx=InfluxConfig.from_env(env),
            registry=RegistryConfig.from_env(env),
            tls=TlsConfig.from_env(env),
            auth=AuthConfig.from_env(env),
            gateway=envvars.text(env, "WORKMESH_RESULTS_GATEWAY"),
            local_reads=envvars.flag(env, "WORKMESH_RESULTS_LOCAL_READS", cls.local_reads),
        )

    def with_listen(self, listen: str) -> ResultsConfig:
        return replace(self, listen=listen)

    def with_store(self, store: str) -> ResultsConfig:
        return replace(self, store=store)

    @property
    def host(self) -> str:
        """The advertised host (never a wildcard address)."""
        return advertise_host(split_host_port(self.listen)[0], self.advertise_host)
