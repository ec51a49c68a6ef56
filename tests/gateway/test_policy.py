"""Routing choice and retry backoff: the pure rules of the dispatcher."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from workmesh.services.gateway import RetryPolicy
from workmesh.services.gateway.discovery._instance import version_key
from workmesh.services.gateway.dispatch._policy import choose_instance, effective_max_attempts


@dataclass
class Inst:
    name: str
    capacity: int
    in_flight: int = 0
    available: bool = True


def test_fewest_in_flight_wins():
    insts = [Inst("a", 4, 2), Inst("b", 4, 1), Inst("c", 4, 3)]
    assert choose_instance(insts).name == "b"


def test_full_and_unavailable_instances_are_skipped():
    insts = [Inst("full", 2, 2), Inst("down", 8, 0, available=False), Inst("ok", 4, 3)]
    assert choose_instance(insts).name == "ok"


def test_none_when_nothing_has_capacity():
    assert choose_instance([Inst("a", 1, 1), Inst("b", 2, 0, available=False)]) is None
    assert choose_instance([]) is None


def test_tie_goes_to_more_free_capacity_then_first():
    assert choose_instance([Inst("small", 2, 1), Inst("big", 8, 1)]).name == "big"
    assert choose_instance([Inst("first", 4, 0), Inst("second", 4, 0)]).name == "first"


def test_repeated_choice_spreads_load_evenly():
    insts = [Inst("a", 4), Inst("b", 4)]
    for _ in range(6):
        choose_instance(insts).in_flight += 1
    assert [i.in_flight for i in insts] == [3, 3]
    choose_instance(insts).in_flight += 1
    choose_instance(insts).in_flight += 1
    assert choose_instance(insts) is None


def test_backoff_grows_and_is_capped():
    policy = RetryPolicy(initial=0.2, multiplier=2.0, maximum=1.0, jitter=0.0)
    assert [policy.delay(n) for n in range(6)] == [0.0, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_backoff_jitter_stays_within_bounds():
    policy = RetryPolicy(initial=1.0, multiplier=2.0, maximum=10.0, jitter=0.1)
    rand = random.Random(7)
    delays = [policy.delay(2, rand) for _ in range(200)]
    assert all(1.8 <= d <= 2.2 for d in delays)
    assert len(set(delays)) > 1


def test_retry_budget_uses_the_type_max_attempts_or_default():
    policy = RetryPolicy()
    assert effective_max_attempts(0) == 3 and effective_max_attempts(5) == 5
    assert policy.should_retry(1, 0) and policy.should_retry(2, 0) and not policy.should_retry(3, 0)
    assert not policy.should_retry(1, 1)
    assert policy.should_retry(4, 5) and not policy.should_retry(5, 5)


@pytest.mark.parametrize(
    ("older", "newer"), [("1.0.0", "1.0.1"), ("1.9", "1.10"), ("1.0", "1.0.1"), ("0.9.9", "1.0.0")]
)
def test_version_order(older, newer):
    assert version_key(older) < version_key(newer)
