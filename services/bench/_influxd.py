"""A throwaway InfluxDB 1.x server (``influxd``) on a temporary directory, for tests and benchmarks.

It gets a generated config: meta/data/wal under one directory, HTTP and RPC on free loopback
ports, usage reporting and query/HTTP logs off. It is stopped by its pid, and by the kernel if the
process that started it dies.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from workmesh.services.core.children import die_with_parent, spawn

_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"
  logging-enabled = false

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
  trace-logging-enabled = false
  cache-max-memory-size = "2g"

[coordinator]
  log-queries-after = "0s"

[retention]
  enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = {auth_enabled}
  log-enabled = false
  write-tracing = false
  max-body-size = 0

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false

[logging]
  level = "warn"
  suppress-logo = true
"""


def influxd_binary() -> str | None:
    """The path of ``influxd`` (``INFLUXD`` env, PATH, or /usr/bin/influxd), or None."""
    for candidate in (os.environ.get("INFLUXD"), shutil.which("influxd"), "/usr/bin/influxd"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TempInfluxd:
    """Start with :meth:`start` (or ``with TempInfluxd() as influx:``); ``url`` is its HTTP API.

    With `admin` (user, password) it runs with ``auth-enabled = true`` and :meth:`start` creates
    that admin user (InfluxDB lets the first one be created without credentials).
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        binary: str | None = None,
        *,
        admin: tuple[str, str] | None = None,
    ) -> None:
        self.binary = binary or influxd_binary()
        self.admin = admin
        self._own_root = root is None
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="workmesh-influx-"))
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / "influxd.log"

    def start(self, timeout: float = 30.0) -> TempInfluxd:
        """Start influxd and wait until /ping answers; raises RuntimeError if it does not."""
        if self.binary is None:
            raise FileNotFoundError("influxd is not installed (Debian: apt-get install influxdb)")
        self.port = _free_port()
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "influxdb.conf"
        config.write_text(
            _CONFIG.format(
                root=self.root,
                http_port=self.port,
                rpc_port=_free_port(),
                auth_enabled="true" if self.admin else "false",
            )
        )
        with open(self.log_path, "wb") as log:
            self.proc = spawn(  # killed by the kernel if this process dies (never left behind)
                [*die_with_parent(signal.SIGKILL), self.binary, "-config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"influxd exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=0.5) as resp:
                    if resp.status == 204:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"influxd did not answer /ping within {timeout}s")
            time.sleep(0.05)
        if self.admin is not None:
            user, password = self.admin
            q = f"CREATE USER \"{user}\" WITH PASSWORD '{password}' WITH ALL PRIVILEGES"
            data = urllib.parse.urlencode({"q": q}).encode()
            with urllib.request.urlopen(f"{self.url}/query", data=data, timeout=10) as resp:
                resp.read()
        return self

    def rss_bytes(self) -> int:
        """Current resident memory of influxd (0 when not running)."""
        if self.proc is None:
            return 0
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def stop(self, timeout: float = 15.0) -> None:
        """Stop influxd by its pid (SIGTERM, then SIGKILL) and remove its directory if it made it."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> TempInfluxd:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
