"""Read one PDU from an untrusted peer, bounded in bytes before a single body byte is read.

The 6-byte header is judged first: its type must be one a server may send, and its length
sane for that type (an A-ASSOCIATE-RJ is 4 bytes, not 4 GB). Bytes that are not DICOM at
all (HTTP, TLS, SSH, a text banner) are told apart from DICOM-shaped bytes that break the
protocol, because a census wants to know which of the two a port is.
`transport.PduTransport` applies these checks as bytes arrive.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pacsaudit.dicom.constants import PduType
from pacsaudit.dicom.pdu import DicomProtocolError

__all__ = ["NotDicomError", "Pdu", "PduLimits", "PeerClosedError", "check_header", "classify_foreign_bytes"]

_HEADER = struct.Struct(">BBL")
_PDU_TYPES = frozenset(int(t) for t in PduType)


class NotDicomError(Exception):
    """The peer speaks another protocol; the message names it when it can."""


class PeerClosedError(Exception):
    """The peer closed the connection before sending a single byte of a PDU."""


@dataclass(frozen=True, slots=True)
class PduLimits:
    """Largest body accepted per PDU type; anything larger is refused before it is read."""

    associate_ac: int = 128 * 1024
    p_data: int = 1024 * 1024

    def max_body(self, pdu_type: int) -> int | None:
        if pdu_type == PduType.ASSOCIATE_AC:
            return self.associate_ac
        if pdu_type == PduType.P_DATA_TF:
            return self.p_data
        if pdu_type in (PduType.ASSOCIATE_RJ, PduType.RELEASE_RQ, PduType.RELEASE_RP, PduType.ABORT):
            return 4
        return None


@dataclass(frozen=True, slots=True)
class Pdu:
    type: int
    body: bytes


def classify_foreign_bytes(head: bytes) -> str | None:
    """Name the protocol behind bytes that cannot start a DICOM PDU, or None if they could."""
    if head[:5] in (b"HTTP/", b"<!DOC", b"<html", b"<HTML"):
        return "HTTP"
    if head[:4] == b"SSH-":
        return "SSH"
    if len(head) >= 2 and head[0] in (0x15, 0x16) and head[1] == 0x03:
        return "TLS"
    if head[:4] in (b"220 ", b"220-"):
        return "FTP/SMTP banner"
    if head[0] not in _PDU_TYPES and (head[0] > 0x1F or head[1:2] != b"\x00"):
        return "unknown protocol"
    return None


def check_header(head: bytes, limits: PduLimits) -> tuple[int, int]:
    """Judge a 6-byte PDU header before its body is read: (type, length), or why not."""
    if head[0] not in _PDU_TYPES:  # a PDU type byte is never the start of what is classified
        foreign = classify_foreign_bytes(head)
        if foreign:
            raise NotDicomError(foreign)
    pdu_type, _, length = _HEADER.unpack(head)
    limit = limits.max_body(pdu_type)
    if limit is None:
        raise DicomProtocolError(f"unexpected PDU type 0x{pdu_type:02x} from a server")
    if length > limit:
        raise DicomProtocolError(f"PDU type 0x{pdu_type:02x} announces {length} bytes (limit {limit})")
    return pdu_type, length
