"""The workmesh worker SDK: declare workflow types, run them, serve them to the mesh.

A workflow module needs one import line::

    from workmesh.workers import Context, Param, Worker, workflow

    @workflow(name="heat-demand", version="1.0.0", params=[Param.int("buildings", default=100, min=1)])
    async def heat_demand(ctx: Context, buildings: int) -> dict:
        ctx.progress(0.5, "half way")
        return {"buildings": buildings}

    worker = Worker([heat_demand], capacity=4)

and is served with ``workmesh worker my_module:worker``.

- ``async def`` handlers run on the worker's event loop; plain ``def`` handlers (CPU-bound
  work) run in a thread and may call the same ``ctx`` methods.
- Return a dict (the job's structured outputs) or :class:`Result` (outputs, bytes, series).
- Raise :class:`ApplicationError` to fail the job, :class:`RetryableError` to have it tried
  again; check ``ctx.cancelled`` / call ``ctx.check_cancelled()`` to honour cancellation.
- :mod:`workmesh.workers.params` validates parameters; the gateway uses the same rules.
"""

from workmesh.services.core.errors import ApplicationError, RetryableError, WorkmeshError
from workmesh.workers._config import WorkerConfig
from workmesh.workers._context import Cancelled, Context, Result
from workmesh.workers._decorator import WorkflowDefinition, definition_of, workflow
from workmesh.workers._loader import load_worker, run_worker
from workmesh.workers._params import Param
from workmesh.workers._series import ResultsConnection
from workmesh.workers._steps import StepFailed
from workmesh.workers._worker import SDK_VERSION, Worker
from workmesh.workers.params import from_python, to_python, validate_params
from workmesh.workers.transport._servicer import create_server

__all__ = [
    "SDK_VERSION",
    "ApplicationError",
    "Cancelled",
    "Context",
    "Param",
    "Result",
    "ResultsConnection",
    "RetryableError",
    "StepFailed",
    "Worker",
    "WorkerConfig",
    "WorkflowDefinition",
    "WorkmeshError",
    "create_server",
    "definition_of",
    "from_python",
    "load_worker",
    "run_worker",
    "to_python",
    "validate_params",
    "workflow",
]
