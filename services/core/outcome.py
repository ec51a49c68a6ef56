"""How one attempt of a job ended, as the worker and the gateway both name it."""

from __future__ import annotations

import enum

from workmesh.v1 import common_pb2

__all__ = ["Outcome"]


class Outcome(enum.StrEnum):
    """How one attempt ended.

    The value is the word the gateway stores with the attempt record (``AttemptRecord.outcome``);
    ``label`` is the lower-case form the worker's job metrics carry.
    """

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"
    LOST = "LOST"  # gateway only: the attempt ended without an outcome from its worker

    @property
    def label(self) -> str:
        """``"succeeded"``, ``"failed"``, ``"cancelled"``, ``"timed_out"`` or ``"lost"``."""
        return self.value.lower()

    @classmethod
    def of_error(cls, error: common_pb2.JobError) -> Outcome:
        """The outcome of an attempt its worker ended with `error` (CANCELLED and TIMED_OUT by
        their code, any other error FAILED)."""
        return _BY_ERROR_CODE.get(error.code, cls.FAILED)

    @classmethod
    def of_status(cls, status: int) -> Outcome:
        """The outcome of an attempt that ended its job with the terminal `status`.

        Raises:
            ValueError: `status` is not terminal.
        """
        try:
            return _BY_STATUS[status]
        except KeyError:
            raise ValueError(f"status: {status} is not a terminal job status") from None


_BY_ERROR_CODE: dict[str, Outcome] = {"CANCELLED": Outcome.CANCELLED, "TIMED_OUT": Outcome.TIMED_OUT}
_BY_STATUS: dict[int, Outcome] = {
    common_pb2.JOB_STATUS_SUCCEEDED: Outcome.SUCCEEDED,
    common_pb2.JOB_STATUS_FAILED: Outcome.FAILED,
    common_pb2.JOB_STATUS_CANCELLED: Outcome.CANCELLED,
    common_pb2.JOB_STATUS_TIMED_OUT: Outcome.TIMED_OUT,
}
