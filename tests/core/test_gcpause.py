"""collector_paused: automatic garbage collection is off inside, back on after the last of
overlapping pauses, and left off when it was off before."""

from __future__ import annotations

import gc
import threading

from workmesh.services.core.gcpause import collector_paused


def test_the_collector_is_off_inside_and_on_after():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_overlapping_pauses_turn_it_on_when_the_last_ends():
    first, second = collector_paused(), collector_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # not nested: the first ends before the second
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_collector_turned_off_by_the_program_stays_off():
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_it_is_turned_back_on_when_the_block_raises():
    try:
        with collector_paused():
            raise KeyError("x")
    except KeyError:
        pass
    assert gc.isenabled()


def test_pauses_in_threads_overlap_safely():
    inside = threading.Barrier(4)
    seen: list[bool] = []

    def pause() -> None:
        with collector_paused():
            inside.wait(10)  # all four paused at once
            seen.append(gc.isenabled())
            inside.wait(10)

    threads = [threading.Thread(target=pause) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert seen == [False] * 4
    assert gc.isenabled()
