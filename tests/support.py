"""Test helpers shared by every test package: free ports, polling, processes we start."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from workmesh.services.core.children import die_with_parent, spawn

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0, host: str = "127.0.0.1") -> None:
    """Block until something accepts connections on host:port."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")
        time.sleep(0.02)


def eventually(check: Callable[[], T], timeout: float = 10.0, interval: float = 0.02) -> T:
    """Call `check` until it returns a truthy value without raising AssertionError; return it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
            if value:
                return value
            error: Exception = AssertionError(f"{check} returned {value!r}")
        except AssertionError as exc:
            error = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {error}") from error
        time.sleep(interval)


async def eventually_async(check: Callable[[], Awaitable[T]], timeout: float = 10.0, interval: float = 0.02) -> T:
    """Async form of :func:`eventually` for coroutine checks."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = await check()
            if value:
                return value
            error: Exception = AssertionError(f"{check} returned {value!r}")
        except AssertionError as exc:
            error = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {error}") from error
        await asyncio.sleep(interval)


async def always_async(check: Callable[[], object], window: float = 0.3, interval: float = 0.02) -> None:
    """Assert that `check` holds at every poll for `window` seconds: the bounded proof that
    something does not happen (a job stays queued, nothing more arrives, a waiter keeps waiting).

    `check` returns a truth value, or an awaitable of one. It fails at the first poll where the
    check is false, naming it; a sleep followed by one assert would only look at the end.
    """
    deadline = time.monotonic() + window
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        assert value, f"{check} stopped holding: returned {value!r}"
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(interval)


def run(body: Awaitable[T], timeout: float = 110.0) -> T:
    """The one way to run an async test (no asyncio plugin): on a fresh event loop, bounded in
    time, so a hang fails with a TimeoutError and its traceback just before pytest-timeout's
    120 s would. A test that may take longer passes its own ``timeout`` (and a timeout mark)."""
    return asyncio.run(asyncio.wait_for(body, timeout))


class Processes:
    """Starts processes for one test and stops every one of them by pid afterwards; the kernel
    SIGKILLs them if the test process itself is killed (:func:`die_with_parent`)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[subprocess.Popen] = []

    def start(
        self, *args: str, env: dict[str, str] | None = None, name: str = "proc", wrap: Sequence[str] = ()
    ) -> subprocess.Popen:
        """Start `args` (e.g. "-m", "workmesh.services.cli", "gateway") under this Python.

        `wrap` goes before the interpreter: a command that execs the rest in place, such as
        ``ip netns exec NAME``, so the pid is still the interpreter's.
        """
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        log = open(self.log_dir / f"{name}-{len(self.started)}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = spawn(
            [*die_with_parent(signal.SIGKILL), *wrap, sys.executable, *args],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )
        proc.log_path = log.name  # type: ignore[attr-defined]
        log.close()
        self.started.append(proc)
        return proc

    def workmesh(
        self, *args: str, env: dict[str, str] | None = None, name: str = "workmesh", wrap: Sequence[str] = ()
    ) -> subprocess.Popen:
        """Start the workmesh CLI with `args` (`wrap`: as for :meth:`start`)."""
        return self.start("-m", "workmesh.services.cli", *args, env=env, name=name, wrap=wrap)

    @staticmethod
    def log_of(proc: subprocess.Popen) -> str:
        return Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send `sig` to the process (by pid) and wait; SIGKILL if it does not exit in time."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)
        return proc.returncode

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            self.stop(proc, timeout=10)


@contextlib.contextmanager
def processes(log_dir: Path) -> Iterator[Processes]:
    procs = Processes(log_dir)
    try:
        yield procs
    finally:
        procs.stop_all()
