"""Results committed as they come: batches to the scan store, with the resume point beside them.

The engine reports each stream position when it starts and when it finishes (with the result
it emitted, if any); the recorder buffers results and writes a batch every `batch` results or
`interval` seconds, in one transaction with the low-water mark (every position below it is
finished and stored). A crash loses at most the batch in memory, and a resume redoes exactly
the positions from the mark on: no result lost, none duplicated (the store replaces a rewrite).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

from pacsaudit.model import EndpointResult
from pacsaudit.storage.progress import LowWaterMark

if TYPE_CHECKING:
    from pacsaudit.storage import ScanStore

__all__ = ["Recorder", "StoreRecorder"]


class Recorder(Protocol):
    """What the engine tells about progress: positions in stream order, results as they finish."""

    def started(self, position: int) -> None: ...

    def finished(self, position: int, result: EndpointResult | None) -> None: ...


class StoreRecorder:
    """Writes a scan's results to a `ScanStore` in batches, with the low-water mark.

    `track_mark=False` (one shard of a multi-process scan) stores results without moving the
    scan's mark: the shard reports `flushed_mark`, and the coordinator stores the lowest of all
    shards' marks, below which every shard is finished and stored.
    """

    def __init__(
        self,
        store: ScanStore,
        scan_id: int,
        *,
        start: int = 0,
        done: int = 0,
        batch: int = 500,
        interval: float = 1.0,
        track_mark: bool = True,
    ) -> None:
        self.store = store
        self.scan_id = scan_id
        self.mark = LowWaterMark(start)
        self._batch = batch
        self._interval = interval
        self._track_mark = track_mark
        self._pending: list[tuple[int, EndpointResult]] = []
        self._last_flush = time.monotonic()
        self.flushed_mark = start
        """The low-water mark as of the last flush: positions below it are finished *and* stored."""
        self.done = done
        """Endpoints finished in this scan, a resumed one's earlier runs included."""
        self.stored = 0

    def started(self, position: int) -> None:
        self.mark.started(position)

    def finished(self, position: int, result: EndpointResult | None) -> None:
        if result is not None:
            self._pending.append((position, result))
        self.mark.finished(position)
        self.done += 1
        if len(self._pending) >= self._batch or time.monotonic() - self._last_flush >= self._interval:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered and where the scan stands, in one transaction."""
        mark = self.mark.mark
        self.store.write_batch(
            self.scan_id,
            self._pending,
            low_water_mark=mark if self._track_mark else None,
            endpoints_done=self.done if self._track_mark else None,
        )
        self.stored += len(self._pending)
        self.flushed_mark = mark
        self._pending = []
        self._last_flush = time.monotonic()
