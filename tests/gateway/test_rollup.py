"""The roll-up of steps' progress into the parent's (services/gateway/_rollup.py), no I/O."""

from __future__ import annotations

import pytest

from workmesh.services.gateway._rollup import WEIGHT_LABEL, rolled_up, step_weight
from workmesh.services.gateway.store import JobRecord
from workmesh.v1 import common_pb2 as c


def child(name: str, status: int = c.JOB_STATUS_RUNNING, fraction: float | None = None, weight: str = "") -> JobRecord:
    return JobRecord(
        job_id=f"{name}-{status}",
        workflow_type="t",
        params={},
        status=status,
        progress=None if fraction is None else c.Progress(fraction=fraction),
        labels={WEIGHT_LABEL: weight} if weight else {},
        parent_id="p",
        step_name=name,
    )


def test_equal_weights_by_default():
    progress = rolled_up([child("a", c.JOB_STATUS_SUCCEEDED), child("b", fraction=0.5), child("c")])
    assert progress.fraction == pytest.approx(0.5)
    assert progress.message == "steps: 1 of 3 done; running: b, c"


def test_declared_weights():
    progress = rolled_up([child("a", fraction=1.0, weight="3"), child("b", fraction=0.5)])
    assert progress.fraction == pytest.approx(0.875)


def test_a_step_retried_after_it_failed_counts_once():
    failed = child("a", c.JOB_STATUS_FAILED, fraction=0.5)
    again = child("a", fraction=0.25)
    assert rolled_up([failed, again]).fraction == pytest.approx(0.25)
    assert rolled_up([child("a", c.JOB_STATUS_SUCCEEDED), again]).fraction == 1.0
    assert rolled_up([]) is None


@pytest.mark.parametrize("label", ["x", "nan", "-1", "0", "inf"])
def test_a_bad_weight_label_weighs_one(label):
    assert step_weight({WEIGHT_LABEL: label}) == 1.0
