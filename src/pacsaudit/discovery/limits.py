"""Politeness limits shared by every connection of a scan: a global rate and a per-host cap."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["HostLimiter", "RateLimiter"]


class RateLimiter:
    """New connections per second over the whole scan; 0 means unlimited.

    A schedule, not a bucket: each caller takes the next slot `1/rate` after the previous one,
    so a burst can never exceed the rate, and a lull does not bank credit.
    """

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self._interval:
            return
        now = time.monotonic()
        slot = max(self._next, now)
        self._next = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)


class HostLimiter:
    """At most `limit` connections open to one IP; entries vanish when idle so memory stays flat."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._hosts: dict[str, tuple[asyncio.Semaphore, int]] = {}

    def __len__(self) -> int:
        return len(self._hosts)

    @asynccontextmanager
    async def slot(self, ip: str) -> AsyncIterator[None]:
        sem, users = self._hosts.get(ip) or (asyncio.Semaphore(self._limit), 0)
        self._hosts[ip] = (sem, users + 1)
        try:
            async with sem:
                yield
        finally:
            sem, users = self._hosts[ip]
            if users <= 1:
                del self._hosts[ip]
            else:
                self._hosts[ip] = (sem, users - 1)
