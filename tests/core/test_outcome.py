"""The one outcome enum: the words the gateway stores with an attempt and the worker's metric labels."""

from __future__ import annotations

import pytest

from workmesh.services.core.outcome import Outcome
from workmesh.v1 import common_pb2 as c


def test_a_worker_error_names_its_outcome_by_code():
    assert Outcome.of_error(c.JobError(code="CANCELLED")) is Outcome.CANCELLED
    assert Outcome.of_error(c.JobError(code="TIMED_OUT")) is Outcome.TIMED_OUT
    assert Outcome.of_error(c.JobError(code="HANDLER_ERROR", retryable=True)) is Outcome.FAILED
    assert Outcome.of_error(c.JobError()) is Outcome.FAILED


def test_a_terminal_status_names_its_outcome_and_a_live_one_is_refused():
    assert Outcome.of_status(c.JOB_STATUS_SUCCEEDED) is Outcome.SUCCEEDED
    assert Outcome.of_status(c.JOB_STATUS_FAILED) is Outcome.FAILED
    assert Outcome.of_status(c.JOB_STATUS_CANCELLED) is Outcome.CANCELLED
    assert Outcome.of_status(c.JOB_STATUS_TIMED_OUT) is Outcome.TIMED_OUT
    with pytest.raises(ValueError, match="status: .* not a terminal"):
        Outcome.of_status(c.JOB_STATUS_RUNNING)


def test_stored_words_are_upper_case_and_metric_labels_lower_case():
    assert [o.value for o in Outcome] == ["SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT", "LOST"]
    assert [o.label for o in Outcome] == ["succeeded", "failed", "cancelled", "timed_out", "lost"]
    assert type(Outcome.LOST.value) is str  # what the stores are given
