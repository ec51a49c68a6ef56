"""Loading a worker from a ``module:attr`` target, as ``workmesh worker`` does."""

from __future__ import annotations

import gc
import importlib
import inspect
from typing import Any

from workmesh.services.core.telemetry import configure_telemetry
from workmesh.workers._config import WorkerConfig, default_instance_id
from workmesh.workers._decorator import definition_of
from workmesh.workers._worker import Worker

_HINT = (
    "a target is `module:attr`, where attr is a workmesh.workers.Worker or a list of functions "
    "decorated with @workflow, e.g. `workmesh.workers.examples.basic:worker`"
)


def load_worker(target: str) -> Worker:
    """The Worker named by `target` (``module:attr``).

    Raises:
        ValueError: the target is malformed, or names something that is not a worker.
        ImportError: the module cannot be imported.
    """
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"worker target {target!r} is not `module:attr`; {_HINT}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ImportError(
                f"worker target {target!r}: no module named {exc.name!r} (is it installed or on "
                f"PYTHONPATH? run from the directory that contains it)"
            ) from exc
        raise
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            workers = sorted(name for name, value in vars(module).items() if isinstance(value, Worker))
            found = f"; Workers in that module: {', '.join(workers)}" if workers else ""
            raise ValueError(f"worker target {target!r}: module {module_name!r} has no attribute {attr!r}{found}")
        obj = getattr(obj, part)
    if isinstance(obj, Worker):
        return obj
    functions = [obj] if callable(obj) and not inspect.isclass(obj) else obj
    if isinstance(functions, (list, tuple)) and functions:
        for fn in functions:
            if definition_of(fn) is None:
                name = getattr(fn, "__qualname__", repr(fn))
                raise ValueError(
                    f"worker target {target!r}: {name} is not a workflow; add "
                    '@workflow(name="...", version="...", params=[...]) above its definition '
                    "(from workmesh.workers import workflow, Param)"
                )
        return Worker(list(functions))
    raise ValueError(f"worker target {target!r} is a {type(obj).__name__}; {_HINT}")


async def run_worker(target: str, config: WorkerConfig | None = None) -> None:
    """Load `target` (``module:attr``) and serve it until SIGTERM/SIGINT (see :meth:`Worker.run`).

    Sets up the process's telemetry (``workmesh-worker``, exporters from ``OTEL_*``) first.
    """
    worker = load_worker(target)
    config = config or WorkerConfig.from_env()
    # The instance id is fixed here so traces, logs and metrics name the same instance.
    worker.instance_id = worker.instance_id or config.instance_id or default_instance_id()
    telemetry = configure_telemetry("workmesh-worker", instance_id=worker.instance_id)
    # Every job allocates a few dozen short-lived objects: freeze what start-up loaded and run
    # the young-generation collection less often (as the gateway does).
    gc.freeze()
    gc.set_threshold(5000, 20, 20)
    try:
        await worker.run(config)
    finally:
        telemetry.shutdown()
