"""Pure dispatch policy: which instance gets a job, and how long a retry waits.

Kept free of I/O so the rules can be unit-tested and reused by the durable dispatcher.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar


class Slot(Protocol):
    """What routing needs to know about an instance."""

    @property
    def available(self) -> bool: ...  # healthy and taking jobs
    @property
    def capacity(self) -> int: ...
    @property
    def in_flight(self) -> int: ...


S = TypeVar("S", bound=Slot)


def choose_instance(instances: Iterable[S]) -> S | None:
    """The available instance with free capacity and the fewest jobs in flight, or None.

    Ties go to the instance with the most free capacity, then to the first one seen, so a
    bigger worker takes more of an even load.
    """
    best: S | None = None
    best_key = (0, 0)
    for inst in instances:
        if not inst.available or inst.in_flight >= inst.capacity:
            continue
        key = (inst.in_flight, inst.in_flight - inst.capacity)
        if best is None or key < best_key:
            best, best_key = inst, key
    return best


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff between attempts of a job whose worker was lost.

    Attributes:
        initial: delay before the second attempt, in seconds.
        multiplier: growth of the delay per further attempt.
        maximum: upper bound of the delay.
        jitter: fraction of the delay added or removed at random, so re-queued jobs of a
            crashed worker do not all hit the next one at the same instant.
    """

    initial: float = 0.2
    multiplier: float = 2.0
    maximum: float = 10.0
    jitter: float = 0.1

    def delay(self, attempt: int, rand: random.Random | None = None) -> float:
        """Seconds to wait before attempt number ``attempt + 1`` after ``attempt`` failed."""
        if attempt < 1:
            return 0.0
        base = min(self.maximum, self.initial * self.multiplier ** (attempt - 1))
        if not self.jitter:
            return base
        r = (rand or random).uniform(-self.jitter, self.jitter)
        return max(0.0, base * (1.0 + r))

    def should_retry(self, attempt: int, max_attempts: int) -> bool:
        """Whether a lost attempt number ``attempt`` leaves room for another one."""
        return attempt < effective_max_attempts(max_attempts)


DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_RETRY = RetryPolicy()


def effective_max_attempts(declared: int) -> int:
    """A type's declared max_attempts, where 0 (unset) means the default of 3."""
    return declared if declared > 0 else DEFAULT_MAX_ATTEMPTS
