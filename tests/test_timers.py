"""Coarse timers: a limit fires after its time (at most a resolution or so late), never before;
its own cancellation becomes a timeout, anyone else's passes through; cancelled entries vanish."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from pacsaudit.timers import RESOLUTION, Expiry, TimerWheel, wheel_of

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


def _run(kind: str, coro: Coroutine[Any, Any, Any]) -> Any:
    with asyncio.Runner(loop_factory=LOOPS[kind]) as runner:
        return runner.run(coro)


@pytest.mark.parametrize("kind", sorted(LOOPS))
def test_callbacks_run_after_their_time_in_order_and_cancelled_ones_never(kind: str) -> None:
    async def go() -> tuple[list[tuple[str, float]], float, int]:
        loop = asyncio.get_running_loop()
        wheel = TimerWheel(loop)
        start = loop.time()
        fired: list[tuple[str, float]] = []
        owners = {name: object() for name in ("late", "early", "dropped", "past")}

        def note(name: str) -> Callable[[], None]:
            return lambda: fired.append((name, loop.time() - start))

        wheel.schedule(owners["late"], start + 0.30, note("late"))
        wheel.schedule(owners["early"], start + 0.10, note("early"))
        slot = wheel.schedule(owners["dropped"], start + 0.20, note("dropped"))
        wheel.schedule(owners["past"], start - 5.0, note("past"))  # already due: the next tick
        wheel.cancel(owners["dropped"], slot)
        await asyncio.sleep(0.30 + 3 * RESOLUTION)
        return fired, start, len(wheel)

    fired, _, pending = _run(kind, go())
    assert [name for name, _ in fired] == ["past", "early", "late"]
    times = dict(fired)
    assert 0.10 <= times["early"] < 0.10 + 3 * RESOLUTION
    assert 0.30 <= times["late"] < 0.30 + 3 * RESOLUTION
    assert pending == 0


def test_a_failing_callback_does_not_strand_the_others() -> None:
    errors: list[dict[str, Any]] = []

    async def go() -> list[str]:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: errors.append(context))
        wheel = TimerWheel(loop)
        ran: list[str] = []

        def broken() -> None:
            raise ValueError("boom")

        when = loop.time() + 0.05
        wheel.schedule(object(), when, broken)
        wheel.schedule(object(), when, lambda: ran.append("after"))
        await asyncio.sleep(0.05 + 3 * RESOLUTION)
        return ran

    assert asyncio.run(go()) == ["after"]
    assert len(errors) == 1 and isinstance(errors[0]["exception"], ValueError)


def test_an_idle_wheel_stops_ticking_and_starts_again() -> None:
    async def go() -> tuple[bool, bool, bool]:
        loop = asyncio.get_running_loop()
        wheel = wheel_of(loop)
        assert wheel_of(loop) is wheel
        fired = asyncio.Event()
        wheel.schedule(object(), loop.time() + 0.01, fired.set)
        await asyncio.wait_for(fired.wait(), 1.0)
        await asyncio.sleep(3 * RESOLUTION)
        idle = wheel._handle is None
        again = asyncio.Event()
        wheel.schedule(object(), loop.time() + 0.01, again.set)
        await asyncio.wait_for(again.wait(), 1.0)
        return idle, fired.is_set(), again.is_set()

    assert asyncio.run(go()) == (True, True, True)


@pytest.mark.parametrize("kind", sorted(LOOPS))
def test_expiry_turns_its_own_cancellation_into_a_timeout(kind: str) -> None:
    async def go() -> tuple[bool, int, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        expiry = Expiry(loop, start + 0.1)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError as exc:
            ours = expiry.caused(exc)
        else:
            ours = False
        task = asyncio.current_task()
        assert task is not None
        return ours, task.cancelling(), loop.time() - start

    ours, cancelling, took = _run(kind, go())
    assert ours
    assert cancelling == 0  # taken back: the task may go on, as after asyncio.timeout
    assert 0.1 <= took < 0.1 + 3 * RESOLUTION


@pytest.mark.parametrize("kind", sorted(LOOPS))
def test_a_postponed_expiry_fires_at_its_new_time_and_never_earlier(kind: str) -> None:
    """The endpoint's one limit: armed for the connect, moved to the deadline once connected."""

    async def go() -> tuple[bool, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        expiry = Expiry(loop, start + 0.1)
        expiry.postpone(start + 0.35)
        expiry.postpone(start + 0.2)  # a limit only moves later
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError as exc:
            return expiry.caused(exc), loop.time() - start
        return False, loop.time() - start

    ours, took = _run(kind, go())
    assert ours
    assert 0.35 <= took < 0.35 + 3 * RESOLUTION


def test_expiry_lets_someone_elses_cancellation_through() -> None:
    async def victim(expiry_box: list[Expiry]) -> None:
        loop = asyncio.get_running_loop()
        expiry = Expiry(loop, loop.time() + 10)
        expiry_box.append(expiry)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError as exc:
            assert not expiry.caused(exc)
            raise

    async def go() -> bool:
        box: list[Expiry] = []
        task = asyncio.create_task(victim(box))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return task.cancelled()

    assert asyncio.run(go())


def test_a_disarmed_expiry_never_fires_and_keeps_no_task() -> None:
    async def go() -> tuple[bool, int]:
        loop = asyncio.get_running_loop()
        expiry = Expiry(loop, loop.time() + 0.02)
        fired = expiry.disarm()
        await asyncio.sleep(0.02 + 3 * RESOLUTION)  # not cancelled: the sleep completes
        return fired, len(wheel_of(loop))

    assert asyncio.run(go()) == (False, 0)


def test_expiry_needs_a_task() -> None:
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(RuntimeError):
            Expiry(loop, loop.time() + 1)
    finally:
        loop.close()


def test_an_infinite_limit_is_never_scheduled() -> None:
    async def go() -> tuple[int, int, bool]:
        loop = asyncio.get_running_loop()
        slot = wheel_of(loop).schedule(object(), float("inf"), lambda: None)
        expiry = Expiry(loop, float("inf"))
        await asyncio.sleep(2 * RESOLUTION)
        return slot, len(wheel_of(loop)), expiry.disarm()

    assert asyncio.run(go()) == (-1, 0, False)


def test_a_limit_postponed_after_it_fired_stays_fired() -> None:
    async def go() -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        expiry = Expiry(loop, loop.time() + 0.05)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            expiry.postpone(loop.time() + 10)  # too late: the task was already cancelled
            return expiry.disarm(), expiry.disarm()
        return False, False

    first, again = asyncio.run(go())
    assert first  # the cancellation was the limit's, and is taken back
    assert not again  # disarming twice takes nothing back twice
