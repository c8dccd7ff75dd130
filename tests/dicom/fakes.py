"""Stand-ins for the socket under a DICOM protocol: what the client wrote is kept, nothing is sent."""

from __future__ import annotations

import asyncio


class RecordingTransport(asyncio.Transport):
    """A transport that records writes and flow control; `close`/`abort` only mark it closing."""

    def __init__(self) -> None:
        super().__init__()
        self.closing = False
        self.written = b""
        self.paused = False

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True
