"""JSON Lines: one `EndpointResult` per line, every contract key present (nulls kept)."""

from __future__ import annotations

import errno
import os
import stat
import sys
from pathlib import Path
from types import TracebackType
from typing import TextIO

from pacsaudit.model import EndpointResult

__all__ = ["JsonlWriter", "WholeLines"]


class JsonlWriter:
    """Writes results as they come; `-` is standard output. Lines are flushed in small batches."""

    def __init__(self, target: str | Path, *, flush_every: int = 64) -> None:
        self._own = str(target) != "-"
        self._out: TextIO = open(target, "w", encoding="utf-8") if self._own else sys.stdout  # noqa: SIM115
        self._flush_every = flush_every
        self._pending = 0

    def write(self, result: EndpointResult) -> None:
        self.write_line(result.model_dump_json())

    def write_line(self, line: str) -> None:
        """A line already serialised (by a worker process), without its newline."""
        self._out.write(line + "\n")
        self._pending += 1
        if self._pending >= self._flush_every:
            self._out.flush()
            self._pending = 0

    def shared_descriptor(self) -> int | None:
        """The output file's descriptor, switched to append mode, for worker processes to write
        their own lines to (with `WholeLines`); None when it is not a regular file.

        With O_APPEND each write() lands whole at the end of the file whoever makes it (on a local
        file system), so the coordinator need not read every worker's lines to write them again.
        Standard output and devices keep going through the coordinator.
        """
        if not self._own:
            return None
        try:
            import fcntl
        except ImportError:  # not a POSIX system: the coordinator relays
            return None
        self._out.flush()
        fd = self._out.fileno()
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
        return fd

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


class WholeLines:
    """Lines buffered and written to a descriptor in batches, each write() a run of whole lines.

    A worker's output: to its pipe to the coordinator, or straight to the shared output file in
    append mode, where whole-line writes from several processes never interleave mid-line on
    a local file system. A short write to a regular file (a full disk, a size limit) is an
    error, not retried: the rest, written later, could land after another process's lines and
    cut a line in two. A pipe has one writer, and takes the rest.
    """

    def __init__(self, fd: int, *, batch: int = 1 << 16) -> None:
        self._fd = fd
        self._batch = batch
        self._shared = stat.S_ISREG(os.fstat(fd).st_mode)
        self._lines: list[str] = []
        self._size = 0

    def add(self, line: str) -> None:
        """One serialised result, without its newline."""
        self._lines.append(line)
        self._size += len(line)
        if self._size >= self._batch:
            self.flush()

    def flush(self) -> None:
        if not self._lines:
            return
        data = memoryview(("\n".join(self._lines) + "\n").encode())
        self._lines = []
        self._size = 0
        while data:
            written = os.write(self._fd, data)
            if self._shared and written < len(data):
                raise OSError(
                    errno.EIO, f"short write to the shared output file ({written} of {len(data)} bytes)"
                )
            data = data[written:]

    def close(self) -> None:
        self.flush()
        os.close(self._fd)
