"""JSON Lines: one `EndpointResult` per line, every contract key present (nulls kept)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import TracebackType
from typing import TextIO

from pacsaudit.model import EndpointResult

__all__ = ["JsonlWriter"]


class JsonlWriter:
    """Writes results as they come; `-` is standard output. Lines are flushed in small batches."""

    def __init__(self, target: str | Path, *, flush_every: int = 64) -> None:
        self._own = str(target) != "-"
        self._out: TextIO = open(target, "w", encoding="utf-8") if self._own else sys.stdout  # noqa: SIM115
        self._flush_every = flush_every
        self._pending = 0
        self.written = 0

    def write(self, result: EndpointResult) -> None:
        self.write_line(result.model_dump_json())

    def write_line(self, line: str) -> None:
        """A line already serialised (by a worker process), without its newline."""
        self._out.write(line + "\n")
        self.written += 1
        self._pending += 1
        if self._pending >= self._flush_every:
            self._out.flush()
            self._pending = 0

    def close(self) -> None:
        self._out.flush()
        if self._own:
            self._out.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
