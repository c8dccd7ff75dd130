"""An asyncio Protocol that turns a peer's bytes into whole PDUs, each bounded before it is read.

A Protocol rather than streams: on a sweep the scanner's own CPU is the limit, and a
protocol with one buffer, one future and one timer per read costs a fraction of a
StreamReader with `asyncio.timeout` around every call. Each header is judged the moment its
six bytes arrive (`reader.check_header`), so an absurd length is refused before a body byte
is buffered. Memory is bounded by flow control: past a high-water mark the socket is no
longer read until the probe has consumed what it holds (a long C-FIND answer, or a peer
that floods unasked, waits in the kernel, not here).
"""

from __future__ import annotations

import asyncio

from pacsaudit.dicom.pdu import DicomProtocolError
from pacsaudit.dicom.reader import (
    NotDicomError,
    Pdu,
    PduLimits,
    PeerClosedError,
    check_header,
    classify_foreign_bytes,
)

__all__ = ["PduTransport"]

_SLACK = 64 * 1024


class PduTransport(asyncio.Protocol):
    """One TCP connection to a DICOM peer: `write` bytes, `await read_pdu()` whole PDUs."""

    __slots__ = (
        "_buffer",
        "_ended",
        "_high_water",
        "_lost",
        "_paused",
        "_transport",
        "_waiter",
        "limits",
        "read_timeout",
    )

    def __init__(self, limits: PduLimits, read_timeout: float) -> None:
        self.limits = limits
        self.read_timeout = read_timeout
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Pdu] | None = None
        self._ended = False
        self._lost: BaseException | None = None
        self._high_water = max(limits.associate_ac, limits.p_data) + 6 + _SLACK
        self._paused = False

    # asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's: alike, not a subclass

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > self._high_water and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._ended = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended = True
        if exc is not None and self._lost is None:
            self._lost = exc
        # The transport holds this protocol: without the cycle both go by reference counting,
        # not at the next garbage collection (which runs rarely during a scan: engine/runner.py).
        self._transport = None
        self._wake()

    # what probes use

    def write(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing() or self._ended:
            if isinstance(self._lost, Exception):
                raise self._lost
            if self._ended:  # the peer hung up (FIN) before we had our say
                raise PeerClosedError("peer closed the connection without answering")
            raise ConnectionResetError("connection already closed")
        self._transport.write(data)

    def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    async def read_pdu(self) -> Pdu:
        """The next whole PDU; `TimeoutError` after `read_timeout`, or the peer's failure as an error."""
        pdu = self._take()
        if pdu is not None:
            return pdu
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Pdu] = loop.create_future()
        self._waiter = waiter
        timer = loop.call_later(self.read_timeout, self._time_out, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None

    # internals

    @staticmethod
    def _time_out(waiter: asyncio.Future[Pdu]) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError("no complete PDU within the timeout"))

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        try:
            pdu = self._take()
        except Exception as exc:
            waiter.set_exception(exc)
            return
        if pdu is not None:
            waiter.set_result(pdu)

    def _take(self) -> Pdu | None:
        """A whole PDU out of the buffer, None if more bytes may come, or the reason none will."""
        buffer = self._buffer
        if len(buffer) < 6:
            if not self._ended:
                return None
            if isinstance(self._lost, Exception):
                raise self._lost
            if not buffer:
                raise PeerClosedError("peer closed the connection without answering")
            foreign = classify_foreign_bytes(bytes(buffer) + b"\x00")
            if foreign:
                raise NotDicomError(f"{foreign} ({len(buffer)} bytes, then closed)")
            raise DicomProtocolError(f"truncated PDU header ({len(buffer)} of 6 bytes)")
        pdu_type, length = check_header(buffer, self.limits)
        end = 6 + length
        if len(buffer) >= end:
            if len(buffer) == end:  # the usual case: exactly one PDU is buffered
                body = bytes(buffer[6:])
                buffer.clear()
            else:
                body = bytes(buffer[6:end])
                del buffer[:end]
            if self._paused and len(buffer) <= self._high_water // 2 and self._transport is not None:
                self._paused = False
                self._transport.resume_reading()
            return Pdu(pdu_type, body)
        if self._paused and self._transport is not None:
            # The next PDU is not whole yet: read on, whatever is buffered (a PDU never exceeds
            # the high-water mark, so this cannot grow past about twice it).
            self._paused = False
            self._transport.resume_reading()
        if self._ended:
            raise DicomProtocolError(
                f"truncated PDU type 0x{pdu_type:02x}: {len(buffer) - 6} of {length} bytes, then closed"
            )
        return None
