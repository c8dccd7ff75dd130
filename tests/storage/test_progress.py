"""`LowWaterMark`: the resume point under out-of-order completion, against a brute-force model."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pacsaudit.storage import LowWaterMark


def test_mark_waits_for_the_slowest_position() -> None:
    # Given positions 0..4 in flight
    lwm = LowWaterMark()
    for position in range(5):
        lwm.started(position)
    assert lwm.mark == 0
    # When every one but 1 finishes
    for position in (4, 0, 3, 2):
        lwm.finished(position)
    # Then the mark stops at 1: position 1 may still be lost in a crash
    assert lwm.mark == 1
    lwm.finished(1)
    assert lwm.mark == 5
    assert lwm.in_flight == 0


def test_positions_never_started_count_as_done() -> None:
    """Excluded targets and targets already stored (on resume) are skipped by the stream."""
    lwm = LowWaterMark(start=100)
    assert lwm.mark == 100
    lwm.started(103)
    assert lwm.mark == 103
    lwm.started(250)
    lwm.finished(103)
    assert lwm.mark == 250
    lwm.finished(250)
    assert lwm.mark == 251


def test_misuse_is_refused() -> None:
    with pytest.raises(ValueError):
        LowWaterMark(start=-1)
    lwm = LowWaterMark()
    lwm.started(5)
    with pytest.raises(ValueError, match="out of order"):
        lwm.started(5)
    with pytest.raises(ValueError, match="out of order"):
        lwm.started(3)
    with pytest.raises(ValueError, match="not in flight"):
        lwm.finished(4)
    lwm.finished(5)
    with pytest.raises(ValueError, match="not in flight"):
        lwm.finished(5)


def test_memory_follows_the_positions_in_flight_not_the_finished_ones() -> None:
    # Given position 0 stuck in flight while a window of 100 streams past it
    lwm = LowWaterMark()
    lwm.started(0)
    window: list[int] = []
    for position in range(1, 100_001):
        lwm.started(position)
        window.append(position)
        if len(window) == 100:
            lwm.finished(window.pop(random.randrange(len(window))))
        # Then the heap never holds much more than what is in flight
        assert len(lwm._heap) <= 2 * lwm.in_flight + 64
    assert lwm.mark == 0
    lwm.finished(0)
    assert lwm.mark == min(window)


def _simulate(
    window: int, total: int, choices: list[int], start: int, gaps: list[int], *, slow_check_every: int = 1
) -> None:
    """Start positions in order (skipping `gaps`), finish random in-flight ones, and compare
    `mark` after every call with its definition (the O(n) part of it every `slow_check_every`)."""
    lwm = LowWaterMark(start=start)
    skipped = set(gaps)
    stream = [p for p in range(start, start + total) if p - start not in skipped]
    started: set[int] = set()
    finished: set[int] = set()
    in_flight: list[int] = []
    previous = lwm.mark
    choice = iter(choices)
    calls = 0
    last_started = start - 1

    def check() -> None:
        nonlocal previous, calls
        mark = lwm.mark
        assert mark >= previous, "the mark went down"
        previous = mark
        calls += 1
        if calls % slow_check_every == 0:
            # every started position below the mark is finished...
            assert all(p in finished for p in started if p < mark)
        # ...and the mark is the first that is not (or one past the last started)
        expected = min(in_flight) if in_flight else last_started + 1
        assert mark == max(expected, start)
        assert lwm.in_flight == len(in_flight)
        assert len(lwm._heap) <= 2 * len(in_flight) + 64

    for position in stream:
        while len(in_flight) >= window:
            done = in_flight.pop(next(choice, 0) % len(in_flight))
            lwm.finished(done)
            finished.add(done)
            check()
        lwm.started(position)
        started.add(position)
        last_started = position
        in_flight.append(position)
        check()
    while in_flight:
        done = in_flight.pop(next(choice, 0) % len(in_flight))
        lwm.finished(done)
        finished.add(done)
        check()
    assert lwm.mark == (stream[-1] + 1 if stream else start)


@settings(max_examples=300, deadline=None)
@given(
    window=st.integers(min_value=1, max_value=40),
    total=st.integers(min_value=0, max_value=400),
    choices=st.lists(st.integers(min_value=0, max_value=10_000), max_size=400),
    start=st.integers(min_value=0, max_value=2**40),
    gaps=st.lists(st.integers(min_value=0, max_value=400), max_size=50),
)
def test_mark_matches_its_definition_for_any_completion_order(
    window: int, total: int, choices: list[int], start: int, gaps: list[int]
) -> None:
    _simulate(window, total, choices, start, gaps)


@pytest.mark.parametrize("seed", range(5))
def test_large_random_runs(seed: int) -> None:
    rng = random.Random(seed)
    _simulate(
        window=rng.choice([1, 16, 512]),
        total=20_000,
        choices=[rng.randrange(1 << 30) for _ in range(20_000)],
        start=rng.randrange(1 << 20),
        gaps=[rng.randrange(20_000) for _ in range(2_000)],
        slow_check_every=997,
    )
