"""Run a coroutine on the fastest event loop available (uvloop where installed)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")

_THRESHOLDS = (50_000, 20, 10)
"""The young generation is collected every 50,000 allocations rather than 700: an endpoint in
flight allocates a few hundred tracked objects that almost all die by reference counting, so
frequent young collections mostly walk the state of the endpoints still running (6 % of a
sweep's instructions). What does wait for a collection, a failed exchange's exception cycle,
is kept small: `FirstContact` drops its buffer and the raising frames when it fails."""


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(coro: Coroutine[Any, Any, T], *, use_uvloop: bool = True) -> T:
    """`asyncio.run` with uvloop when it is there: about half the CPU per connection.

    Everything imported and built before the scan (pydantic schemas, Typer, Rich: hundreds of
    thousands of objects) lives as long as the process, so it is moved out of the collector's
    sight; otherwise each full collection walks it again while the scan allocates per endpoint.
    Young collections are made rarer for the same reason (`_THRESHOLDS`).
    """
    gc.freeze()  # no collection first: the little garbage of start-up is not worth 30 ms
    thresholds = gc.get_threshold()
    gc.set_threshold(*_THRESHOLDS)
    try:
        with asyncio.Runner(loop_factory=_loop_factory() if use_uvloop else None) as runner:
            return runner.run(coro)
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
