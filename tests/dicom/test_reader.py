"""The bounded PDU reader: every way a peer can answer, judged from the header before the body."""

from __future__ import annotations

import asyncio

import pytest

from pacsaudit.dicom.pdu import DicomProtocolError
from pacsaudit.dicom.reader import NotDicomError, Pdu, PduLimits, PeerClosedError, read_pdu


def _read(data: bytes, limits: PduLimits | None = None) -> Pdu:
    async def go() -> Pdu:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await read_pdu(reader, limits or PduLimits())

    return asyncio.run(go())


def test_reads_a_whole_reject() -> None:
    assert _read(bytes.fromhex("03 00 00000004 00010107")) == Pdu(3, bytes.fromhex("00010107"))


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


def test_p_data_bound_follows_limits() -> None:
    with pytest.raises(DicomProtocolError, match="limit 1000"):
        _read(bytes.fromhex("04 00 00001000"), PduLimits(p_data=1000))


def test_silent_close_is_peer_closed() -> None:
    with pytest.raises(PeerClosedError):
        _read(b"")
