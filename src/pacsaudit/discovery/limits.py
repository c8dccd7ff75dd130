"""Politeness limits shared by every connection of a scan: a global rate and a per-host cap."""

from __future__ import annotations

import asyncio
import time
from collections import deque

__all__ = ["HostLimiter", "RateLimiter"]


class RateLimiter:
    """New connections per second over the whole scan; 0 means unlimited.

    A schedule, not a bucket: each caller takes the next slot `1/rate` after the previous one,
    so a burst can never exceed the rate, and a lull does not bank credit.
    """

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        slot = max(self._next, now)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


class HostLimiter:
    """At most `limit` connections open to one IP at once.

    Counts, not semaphores: on a sweep almost every host has one connection, so the common
    path is a dict increment; waiters queue (FIFO) only on a host at its limit. Entries vanish
    when a host goes idle, so memory stays flat however many hosts a scan touches.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._open: dict[str, int] = {}
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}

    def __len__(self) -> int:
        return len(self._open)

    def try_acquire(self, ip: str) -> bool:
        """Take a slot at once if one is free (no coroutine: the sweep's common case)."""
        count = self._open.get(ip, 0)
        if count < self._limit and ip not in self._waiting:
            self._open[ip] = count + 1
            return True
        return False

    async def acquire(self, ip: str) -> None:
        if self.try_acquire(ip):
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(ip, deque()).append(waiter)
        try:
            await waiter  # release() hands its slot over: the count is already ours
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(ip)  # the slot came in as we were cancelled: give it on
            else:
                self._drop_waiter(ip, waiter)
            raise

    def release(self, ip: str) -> None:
        queue = self._waiting.get(ip)
        while queue:
            waiter = queue.popleft()
            if not queue:
                del self._waiting[ip]
            if not waiter.done():
                waiter.set_result(None)
                return
        count = self._open[ip] - 1
        if count:
            self._open[ip] = count
        else:
            del self._open[ip]

    def _drop_waiter(self, ip: str, waiter: asyncio.Future[None]) -> None:
        queue = self._waiting.get(ip)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self._waiting[ip]
