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
from typing import NamedTuple

from pacsaudit.dicom.constants import PduType
from pacsaudit.dicom.pdu import DicomProtocolError

__all__ = ["NotDicomError", "Pdu", "PduLimits", "PeerClosedError", "check_header", "classify_foreign_bytes"]

_HEADER = struct.Struct(">BBL")
_PDU_TYPES = frozenset(int(t) for t in PduType)
_FIXED_BODY = frozenset(
    int(t) for t in (PduType.ASSOCIATE_RJ, PduType.RELEASE_RQ, PduType.RELEASE_RP, PduType.ABORT)
)
"""PDU types whose body is always 4 bytes."""


class NotDicomError(Exception):
    """The peer speaks another protocol; the message names it when it can."""


class PeerClosedError(Exception):
    """The peer closed the connection before sending a single byte of a PDU."""


@dataclass(frozen=True, slots=True)
class PduLimits:
    """Largest body accepted per PDU type; anything larger is refused before it is read."""

    associate_ac: int = 128 * 1024
    p_data: int = 1024 * 1024


class Pdu(NamedTuple):
    """One whole PDU (a named tuple: three are made per endpoint on a sweep)."""

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


def check_header(head: bytes | bytearray, limits: PduLimits) -> tuple[int, int]:
    """Judge a PDU header (the first 6 bytes of `head`) before its body is read: (type,
    length), or why not. `head` may be the whole receive buffer: nothing is copied."""
    if head[0] not in _PDU_TYPES:  # a PDU type byte is never the start of what is classified
        foreign = classify_foreign_bytes(bytes(head[:6]))
        if foreign:
            raise NotDicomError(foreign)
    pdu_type, _, length = _HEADER.unpack_from(head)
    # The largest body sane for the type (inline: a sweep judges three headers per endpoint)
    if pdu_type == PduType.P_DATA_TF:
        limit: int | None = limits.p_data
    elif pdu_type == PduType.ASSOCIATE_AC:
        limit = limits.associate_ac
    else:
        limit = 4 if pdu_type in _FIXED_BODY else None
    if limit is None:
        raise DicomProtocolError(f"unexpected PDU type 0x{pdu_type:02x} from a server")
    if length > limit:
        raise DicomProtocolError(f"PDU type 0x{pdu_type:02x} announces {length} bytes (limit {limit})")
    return pdu_type, length
