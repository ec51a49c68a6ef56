"""Pins the public API of workmesh.workers: changing it is a deliberate act."""

import workmesh.workers
import workmesh.workers.params


def test_workers_exports():
    assert sorted(workmesh.workers.__all__) == sorted(
        [
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
    )
    for name in workmesh.workers.__all__:
        assert getattr(workmesh.workers, name) is not None


def test_params_module_exports():
    assert sorted(workmesh.workers.params.__all__) == ["ParamsValidator", "from_python", "to_python", "validate_params"]
