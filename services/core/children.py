"""Child processes that do not outlive the process that started them.

A server a test fixture, a benchmark or ``workmesh dev`` starts is stopped by its pid when its
starter ends normally; when the starter is killed (SIGKILL, an OOM kill, a CI timeout) nothing
would stop it and it would run on with parent pid 1. On Linux, util-linux's ``setpriv
--pdeathsig`` (:func:`die_with_parent`) sets PR_SET_PDEATHSIG and execs the command in place,
so the pid is still the command's and the kernel signals it when its parent dies.

The kernel counts the *thread* that forked the child as its parent, so a child started from a
worker thread (``asyncio.to_thread``, an executor) would be signalled when that thread ends:
:func:`spawn` forks from the main thread, or from one thread that lasts as long as the process.
"""

from __future__ import annotations

import concurrent.futures
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["die_with_parent", "spawn"]


def die_with_parent(sig: int = signal.SIGKILL, *options: str) -> list[str]:
    """The prefix (``setpriv [OPTIONS] --pdeathsig SIG --``) that has the command signalled with
    `sig` when this process dies; start the command with :func:`spawn`.

    Empty, so the command runs as before, off Linux or without ``setpriv``.

    It survives an ``ip netns exec`` before or after it (that execs in place too), but not a
    command after it that forks and leaves its child behind (``pg_ctl start``, ``runuser``):
    start the server itself. A later change of user clears it, so to switch users give
    ``setpriv`` both at once: `options` (e.g. ``--reuid=postgres``) go before ``--pdeathsig``,
    and setpriv changes the user first.
    """
    if not sys.platform.startswith("linux"):
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return []
    return [setpriv, *options, "--pdeathsig", signal.Signals(sig).name, "--"]


def spawn(args: Sequence[str], **popen: Any) -> subprocess.Popen:
    """``subprocess.Popen(args, **popen)``, forked from a thread that ends only with this process.

    From the main thread it is a plain Popen; from any other thread the Popen runs on one
    long-lived daemon thread and this call waits for it (errors are raised here).
    """
    if threading.current_thread() is threading.main_thread():
        return subprocess.Popen(list(args), **popen)
    done: concurrent.futures.Future[subprocess.Popen] = concurrent.futures.Future()
    _spawner().put((lambda: subprocess.Popen(list(args), **popen), done))
    return done.result()


_requests: queue.SimpleQueue[tuple[Callable[[], subprocess.Popen], concurrent.futures.Future]] | None = None
_lock = threading.Lock()


def _spawner() -> queue.SimpleQueue:
    global _requests
    with _lock:
        if _requests is None:
            _requests = queue.SimpleQueue()
            threading.Thread(target=_serve, args=(_requests,), name="workmesh-spawner", daemon=True).start()
        return _requests


def _serve(requests: queue.SimpleQueue) -> None:
    while True:
        start, done = requests.get()
        try:
            done.set_result(start())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            done.set_exception(exc)
