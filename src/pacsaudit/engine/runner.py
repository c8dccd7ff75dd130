"""Run a coroutine on the fastest event loop available (uvloop where installed)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(coro: Coroutine[Any, Any, T], *, use_uvloop: bool = True) -> T:
    """`asyncio.run` with uvloop when it is there: about half the CPU per connection."""
    with asyncio.Runner(loop_factory=_loop_factory() if use_uvloop else None) as runner:
        return runner.run(coro)
