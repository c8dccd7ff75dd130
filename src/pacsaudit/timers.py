"""Coarse timers for limits that almost never fire: a sweep's connect, read and endpoint limits.

A sweep sets three limits per endpoint and, on a healthy peer, cancels all three within a
millisecond. An event-loop timer each (a handle, a heap insertion, a removal, under uvloop
an allocated libuv timer closed through a callback) was a measurable share of an endpoint's
cost. Here a limit is an entry in a slot of `RESOLUTION` seconds: setting it is a dict
insertion, cancelling it a dict removal, and one loop timer per event loop ticks while any
entry is pending. A limit fires between its time and about two resolutions later; that lateness is
the price, and for limits of seconds it does not matter.

`Expiry` is `asyncio.timeout` on that wheel: the task is cancelled at the limit, and its owner
turns *its own* cancellation into a timeout while any other cancellation passes through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["RESOLUTION", "Expiry", "TimerWheel", "wheel_of"]

RESOLUTION = 0.05
"""Seconds per slot: a limit fires up to about two of these late."""
_NEVER = float("inf")


class TimerWheel:
    """Callbacks run once their time has passed, keyed by an owner that can take them back."""

    __slots__ = ("_cursor", "_handle", "_loop", "_slots")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._slots: dict[int, dict[object, Callable[[], None]]] = {}
        self._cursor = int(loop.time() / RESOLUTION)
        """The first slot not yet run."""
        self._handle: asyncio.TimerHandle | None = None

    def schedule(self, owner: object, when: float, callback: Callable[[], None]) -> int:
        """Run `callback` once loop time `when` has passed; returns the slot, for `cancel`.

        One entry per owner and slot: scheduling the same owner twice in one slot keeps the
        later callback.
        """
        if when == _NEVER:  # no limit (an infinite timeout): nothing to schedule
            return -1
        if self._handle is None:  # idle until now: no slot before this moment can be pending
            self._cursor = max(self._cursor, int(self._loop.time() / RESOLUTION))
            self._handle = self._loop.call_later(RESOLUTION, self._tick)
        slot = int(when / RESOLUTION) + 1  # the first slot that starts after `when`
        if slot < self._cursor:
            slot = self._cursor
        bucket = self._slots.get(slot)
        if bucket is None:
            self._slots[slot] = {owner: callback}
        else:
            bucket[owner] = callback
        return slot

    def cancel(self, owner: object, slot: int) -> None:
        bucket = self._slots.get(slot)
        if bucket is not None and bucket.pop(owner, None) is not None and not bucket:
            del self._slots[slot]

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._slots.values())

    def _tick(self) -> None:
        self._handle = None
        try:
            now = int(self._loop.time() / RESOLUTION)  # slots up to and including `now` have begun
            while self._cursor <= now:
                bucket = self._slots.pop(self._cursor, None)
                self._cursor += 1  # before the callbacks: what they schedule lands in a later slot
                if bucket:
                    for callback in bucket.values():
                        try:
                            callback()
                        except Exception as exc:  # one broken callback must not strand the others
                            self._loop.call_exception_handler(
                                {"message": "timer callback failed", "exception": exc}
                            )
        finally:  # even past a KeyboardInterrupt: the entries left must still fire
            if self._slots and self._handle is None:
                self._handle = self._loop.call_later(RESOLUTION, self._tick)


_wheels: dict[asyncio.AbstractEventLoop, TimerWheel] = {}


def wheel_of(loop: asyncio.AbstractEventLoop) -> TimerWheel:
    """The wheel of `loop`, made on first use; wheels of closed loops are dropped then."""
    wheel = _wheels.get(loop)
    if wheel is None:
        for old in [old for old in _wheels if old.is_closed()]:
            del _wheels[old]
        wheel = _wheels[loop] = TimerWheel(loop)
    return wheel


class Expiry:
    """Cancel the task running now once loop time `when` has passed, unless `disarm` comes first.

    The owner catches `CancelledError` and asks `caused(exc)`: True means the limit was reached
    and the cancellation was ours (taken back: the task is no longer cancelling); False means
    it came from elsewhere (a Ctrl-C, a caller's own limit) and must propagate.
    """

    __slots__ = ("_cancelling", "_expired", "_loop", "_slot", "_task", "_wheel", "_when")

    def __init__(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("Expiry must be used inside a task")
        self._task: asyncio.Task[object] | None = task
        self._cancelling = task.cancelling()
        self._expired = False
        self._loop = loop
        self._when = when
        self._wheel = wheel_of(loop)
        self._slot: int | None = self._wheel.schedule(self, when, self._fire)

    def postpone(self, when: float) -> None:
        """Move the limit to a later loop time `when` (one limit for a connect, then the rest).

        Nothing is rescheduled now: when the entry comes due early, it is set again for what
        is left, so a limit disarmed before its first time costs no more for having moved.
        """
        self._when = max(self._when, when)

    def _fire(self) -> None:
        self._slot = None
        if self._task is None:
            return
        if self._loop.time() < self._when:  # postponed since it was set
            self._slot = self._wheel.schedule(self, self._when, self._fire)
            return
        self._expired = True
        self._task.cancel()

    def disarm(self) -> bool:
        """Stop the limit; True when it had already fired (its cancellation is then taken back)."""
        if self._slot is not None:
            self._wheel.cancel(self, self._slot)
            self._slot = None
        task, self._task = self._task, None  # nothing kept alive once done with
        if not self._expired or task is None:
            return False
        return task.uncancel() <= self._cancelling

    def caused(self, exc: BaseException) -> bool:
        """Whether `exc` is this limit's own cancellation; disarms either way."""
        return self.disarm() and isinstance(exc, asyncio.CancelledError)
