"""Fault injection at the lease boundary, for the tests that reproduce take-over races.

``WORKMESH_FAULT_STALL_DISPATCH=<seconds>`` makes a gateway block its whole event loop once, at
its first dispatch, after choosing the instance and before anything goes to the worker or the
store — what a replica starved of CPU, paused by the collector or stuck on a slow disk does.
``WORKMESH_FAULT_STALL_EXECUTE=<seconds>`` does the same once the first dispatch is recorded,
just before the worker is sent the job.
Nothing renews its leases meanwhile, so another replica may take the job over: the dispatcher
must then let go instead of running it a second time. Unset (the default) costs one attribute
check per dispatch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from workmesh.services.core import env as envvars

log = logging.getLogger("workmesh.gateway.faults")


@dataclass
class Faults:
    """Injected faults of one gateway process (read once from the environment)."""

    stall_dispatch: float = 0.0  # seconds the first dispatch blocks the event loop
    stall_execute: float = 0.0  # seconds the first recorded dispatch blocks it before Execute

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Faults:
        """Read ``WORKMESH_FAULT_STALL_DISPATCH`` and ``WORKMESH_FAULT_STALL_EXECUTE``.

        Raises:
            ValueError: not a duration between 0 and 600 seconds; the message names the variable.
        """
        return cls(
            stall_dispatch=_seconds(env, "WORKMESH_FAULT_STALL_DISPATCH"),
            stall_execute=_seconds(env, "WORKMESH_FAULT_STALL_EXECUTE"),
        )

    def at_dispatch(self, job_id: str) -> None:
        """The lease boundary of a dispatch: stall here once if asked to."""
        if self.stall_dispatch:
            seconds, self.stall_dispatch = self.stall_dispatch, 0.0
            _stall(seconds, f"at the dispatch of job {job_id}")

    def at_execute(self, job_id: str) -> None:
        """The dispatch is recorded, the worker not yet told: stall here once if asked to."""
        if self.stall_execute:
            seconds, self.stall_execute = self.stall_execute, 0.0
            _stall(seconds, f"before sending job {job_id} to its worker")


def _stall(seconds: float, where: str) -> None:
    log.warning("fault injection: stalling the event loop for %gs %s", seconds, where)
    time.sleep(seconds)  # blocking on purpose: nothing else of this process runs meanwhile
    log.warning("fault injection: stall over (%s)", where)


def _seconds(env: Mapping[str, str], name: str) -> float:
    return envvars.seconds(env, name, 0.0, minimum=0.0, maximum=600.0)
