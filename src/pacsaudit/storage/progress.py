"""The resume point of a scan whose endpoints finish out of order.

The engine probes many endpoints at once and they finish in any order. After a crash, the
scan must restart from a position below which *every* endpoint is finished and stored (the
low-water mark), not from the highest finished one: the slow endpoint at position 5 may still
be in flight when position 9,000 is done.
"""

from __future__ import annotations

import heapq

__all__ = ["LowWaterMark"]


class LowWaterMark:
    """Tracks in-flight stream positions; `mark` is the smallest position not yet finished.

    Positions must be `started` in increasing order (the order the target stream yields them)
    and each `finished` once. Positions the stream skips (exclusions) or the engine never starts
    (already stored, on resume) count as done: nothing below `mark` is left to do. With nothing
    in flight, `mark` is one past the last position started.

    Memory is O(positions in flight): a min-heap of in-flight positions with lazy deletion,
    compacted when stale entries outnumber live ones; each call is O(log n) amortised.
    """

    __slots__ = ("_heap", "_in_flight", "_next")

    def __init__(self, start: int = 0) -> None:
        if start < 0:
            raise ValueError(f"a stream position is >= 0, not {start}")
        self._heap: list[int] = []
        self._in_flight: set[int] = set()
        self._next = start

    def started(self, position: int) -> None:
        """An endpoint at `position` is now in flight."""
        if position < self._next:
            raise ValueError(
                f"position {position} started out of order: positions must increase (next is >= {self._next})"
            )
        self._in_flight.add(position)
        heapq.heappush(self._heap, position)
        self._next = position + 1

    def finished(self, position: int) -> None:
        """The endpoint at `position` is done (its result, if any, handed to storage)."""
        try:
            self._in_flight.remove(position)
        except KeyError:
            raise ValueError(f"position {position} finished but was not in flight") from None
        heap = self._heap
        while heap and heap[0] not in self._in_flight:
            heapq.heappop(heap)
        if len(heap) > 2 * len(self._in_flight) + 64:
            self._heap = list(self._in_flight)
            heapq.heapify(self._heap)

    @property
    def mark(self) -> int:
        """Every position below this one is finished (or was never to be started)."""
        return self._heap[0] if self._heap else self._next

    @property
    def in_flight(self) -> int:
        """How many positions are started and not finished."""
        return len(self._in_flight)

    def __repr__(self) -> str:
        return f"LowWaterMark(mark={self.mark}, in_flight={len(self._in_flight)})"
