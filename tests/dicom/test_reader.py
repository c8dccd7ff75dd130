"""The bounded PDU reader: every way a peer can answer, judged from the header before the body.

The `PduTransport` protocol is fed bytes exactly as the event loop would feed them.
"""

from __future__ import annotations

import asyncio

import pytest

from pacsaudit.dicom.pdu import DicomProtocolError
from pacsaudit.dicom.reader import NotDicomError, Pdu, PduLimits, PeerClosedError
from pacsaudit.dicom.transport import PduTransport

from .fakes import RecordingTransport


def _read(*chunks: bytes, limits: PduLimits | None = None, eof: bool = True, timeout: float = 1.0) -> Pdu:
    async def go() -> Pdu:
        proto = PduTransport(limits or PduLimits(), read_timeout=timeout)
        proto.connection_made(RecordingTransport())
        loop = asyncio.get_running_loop()
        for i, chunk in enumerate(chunks):
            loop.call_later(0.001 * (i + 1), proto.data_received, chunk)
        if eof:
            loop.call_later(0.001 * (len(chunks) + 1), proto.eof_received)
        return await proto.read_pdu()

    return asyncio.run(go())


def test_reads_a_whole_reject() -> None:
    assert _read(bytes.fromhex("03 00 00000004 00010107")) == Pdu(3, bytes.fromhex("00010107"))


def test_reassembles_a_pdu_split_across_reads() -> None:
    pdu = bytes.fromhex("03 00 00000004 00010107")
    assert _read(pdu[:1], pdu[1:7], pdu[7:], eof=False) == Pdu(3, pdu[6:])


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "HTTP"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "SSH"),
        (bytes.fromhex("15 03 03 00 02 02 28"), "TLS"),  # TLS alert record
        (b"220 mail ESMTP\r\n", "banner"),
        (b"\xff" * 64, "unknown protocol"),
        (b"HTT", "3 bytes, then closed"),  # text, then close: not DICOM, whatever it was
    ],
)
def test_foreign_protocols_are_not_dicom(data: bytes, words: str) -> None:
    with pytest.raises(NotDicomError, match=words):
        _read(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes.fromhex("02 00 fffffff0"), "announces 4294967280 bytes"),  # absurd A-ASSOCIATE-AC
        (bytes.fromhex("03 00 00000010") + bytes(16), "limit 4"),  # A-ASSOCIATE-RJ is 4 bytes
        (bytes.fromhex("0a 00 00000004 00000000"), "unexpected PDU type 0x0a"),
        (bytes.fromhex("01 00 00000004 00000000"), "unexpected PDU type 0x01"),  # an RQ from a server
        (bytes.fromhex("02 00 000000c8") + bytes(20), "20 of 200 bytes"),  # truncated body
        (bytes.fromhex("02 00"), "truncated PDU header"),
    ],
)
def test_dicom_shaped_violations_are_protocol_errors(data: bytes, message: str) -> None:
    with pytest.raises(DicomProtocolError, match=message):
        _read(data)


def test_absurd_length_is_refused_before_the_body_arrives() -> None:
    """No end of stream, no body: the header alone is enough to give up."""
    with pytest.raises(DicomProtocolError, match="announces"):
        _read(bytes.fromhex("02 00 fffffff0"), eof=False)


def test_p_data_bound_follows_limits() -> None:
    with pytest.raises(DicomProtocolError, match="limit 1000"):
        _read(bytes.fromhex("04 00 00001000"), limits=PduLimits(p_data=1000))


def test_silent_close_is_peer_closed() -> None:
    with pytest.raises(PeerClosedError):
        _read()


def test_reset_is_a_connection_reset() -> None:
    async def go() -> Pdu:
        proto = PduTransport(PduLimits(), read_timeout=1.0)
        proto.connection_made(RecordingTransport())
        asyncio.get_running_loop().call_soon(proto.connection_lost, ConnectionResetError(104, "reset"))
        return await proto.read_pdu()

    with pytest.raises(ConnectionResetError):
        asyncio.run(go())


def test_silence_is_a_timeout() -> None:
    with pytest.raises(TimeoutError):
        _read(bytes.fromhex("02 00 00000044"), eof=False, timeout=0.05)


def test_reading_pauses_past_the_high_water_mark_and_resumes_when_consumed() -> None:
    """A long answer (or an unasked flood) waits in the kernel, not in pacsaudit's memory."""
    limits = PduLimits(associate_ac=1024, p_data=1024)
    pdu = bytes.fromhex("04 00 00000400") + bytes(1024)

    async def go() -> tuple[bool, int, bool, int]:
        proto = PduTransport(limits, read_timeout=1.0)
        transport = RecordingTransport()
        proto.connection_made(transport)
        for _ in range(200):
            proto.data_received(pdu)
        paused_after_flood = transport.paused
        for _ in range(190):
            await proto.read_pdu()
        return paused_after_flood, len(proto._buffer), transport.paused, 1024 + 6 + 64 * 1024

    paused, left, still_paused, high_water = asyncio.run(go())
    assert paused, "reading must stop past the high-water mark"
    assert not still_paused and left <= high_water // 2, "and resume once the probe has caught up"
