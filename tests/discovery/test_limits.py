"""Politeness limits: the rate is a schedule nobody can burst past; per-host caps hold and vanish."""

from __future__ import annotations

import asyncio
import time

from pacsaudit.discovery import HostLimiter, RateLimiter


def test_rate_limiter_spaces_new_connections() -> None:
    async def go() -> float:
        limiter = RateLimiter(50.0)
        started = time.monotonic()
        await asyncio.gather(*(limiter.wait() for _ in range(11)))
        return time.monotonic() - started

    # 11 connections at 50/s: the first goes at once, the 11th 10 intervals (0.2 s) later.
    assert 0.18 <= asyncio.run(go()) < 0.6


def test_unlimited_rate_does_not_wait() -> None:
    async def go() -> float:
        limiter = RateLimiter(0)
        started = time.monotonic()
        for _ in range(10_000):
            await limiter.wait()
        return time.monotonic() - started

    assert asyncio.run(go()) < 0.5


async def _peak_inside(limiter: HostLimiter, ips: list[str]) -> int:
    """Hold each IP's slot briefly, all at once; the most holders seen together."""
    inside = peak = 0

    async def use(ip: str) -> None:
        nonlocal inside, peak
        await limiter.acquire(ip)
        inside += 1
        peak = max(peak, inside)
        await asyncio.sleep(0.01)
        inside -= 1
        limiter.release(ip)

    await asyncio.gather(*(use(ip) for ip in ips))
    return peak


def test_host_limiter_caps_one_host_and_forgets_idle_hosts() -> None:
    limiter = HostLimiter(2)
    assert asyncio.run(_peak_inside(limiter, ["127.0.0.1"] * 8)) == 2
    assert len(limiter) == 0


def test_host_limiter_does_not_couple_different_hosts() -> None:
    assert asyncio.run(_peak_inside(HostLimiter(1), [f"127.0.0.{i}" for i in range(1, 6)])) == 5


def test_host_limiter_survives_cancelled_waiters() -> None:
    async def go() -> int:
        limiter = HostLimiter(1)
        await limiter.acquire("127.0.0.1")
        waiter = asyncio.create_task(limiter.acquire("127.0.0.1"))
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        limiter.release("127.0.0.1")
        await asyncio.wait_for(limiter.acquire("127.0.0.1"), 1)  # the slot was not lost
        limiter.release("127.0.0.1")
        return len(limiter)

    assert asyncio.run(go()) == 0
