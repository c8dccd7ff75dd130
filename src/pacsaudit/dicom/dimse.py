"""DIMSE command sets (PS3.7 section 9, E): group 0000 elements, always implicit VR little endian.

Only the few elements pacsaudit sends or reads are known by name; a command set is parsed
into `{tag: raw bytes}` with every length checked, so a hostile command set is an error,
not a crash.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from pacsaudit.dicom.pdu import DicomProtocolError

__all__ = [
    "C_CANCEL_RQ",
    "C_ECHO_RQ",
    "C_ECHO_RSP",
    "C_FIND_RQ",
    "C_FIND_RSP",
    "STATUS_CANCEL",
    "STATUS_PENDING",
    "STATUS_PENDING_WARNING",
    "STATUS_SUCCESS",
    "CommandSet",
    "StatusCategory",
    "decode_command_set",
    "encode_c_cancel_rq",
    "encode_c_echo_rq",
    "encode_c_find_rq",
    "encode_command_set",
    "is_pending",
    "status_category",
    "status_words",
]

C_ECHO_RQ = 0x0030
C_ECHO_RSP = 0x8030
C_FIND_RQ = 0x0020
C_FIND_RSP = 0x8020
C_CANCEL_RQ = 0x0FFF
NO_DATA_SET = 0x0101
DATA_SET_PRESENT = 0x0000
"""Any value but 0x0101 announces a data set (PS3.7 E.1-1); 0x0000 is what the standard's examples use."""

PRIORITY_MEDIUM = 0x0000

TAG_AFFECTED_SOP_CLASS = 0x00000002
TAG_COMMAND_FIELD = 0x00000100
TAG_MESSAGE_ID = 0x00000110
TAG_MESSAGE_ID_RESPONDED = 0x00000120
TAG_PRIORITY = 0x00000700
TAG_DATA_SET_TYPE = 0x00000800
TAG_STATUS = 0x00000900

_ELEMENT = struct.Struct("<HHL")
_MAX_ELEMENTS = 64


def _ui(value: str) -> bytes:
    raw = value.encode("ascii")
    return raw + b"\x00" if len(raw) % 2 else raw


def encode_command_set(elements: dict[int, bytes]) -> bytes:
    """Encode group-0000 elements (already in their value encoding) with the group length first."""
    body = b"".join(
        _ELEMENT.pack(tag >> 16, tag & 0xFFFF, len(value)) + value for tag, value in sorted(elements.items())
    )
    return _ELEMENT.pack(0, 0, 4) + struct.pack("<L", len(body)) + body


def encode_c_echo_rq(message_id: int, sop_class: str) -> bytes:
    head, tail = _c_echo_template(sop_class)
    return head + struct.pack("<H", message_id) + tail


@lru_cache(maxsize=8)
def _c_echo_template(sop_class: str) -> tuple[bytes, bytes]:
    """The C-ECHO-RQ around its 2-byte message ID, encoded once (a sweep sends thousands)."""
    marker = b"\xa5\x5a"
    encoded = encode_command_set(
        {
            TAG_AFFECTED_SOP_CLASS: _ui(sop_class),
            TAG_COMMAND_FIELD: struct.pack("<H", C_ECHO_RQ),
            TAG_MESSAGE_ID: marker,
            TAG_DATA_SET_TYPE: struct.pack("<H", NO_DATA_SET),
        }
    )
    at = encoded.index(_ELEMENT.pack(0, TAG_MESSAGE_ID & 0xFFFF, 2) + marker) + 8
    return encoded[:at], encoded[at + 2 :]


def encode_c_find_rq(message_id: int, sop_class: str, priority: int = PRIORITY_MEDIUM) -> bytes:
    """C-FIND-RQ (PS3.7 9.3.2.1); the identifier follows as the message's data set."""
    return encode_command_set(
        {
            TAG_AFFECTED_SOP_CLASS: _ui(sop_class),
            TAG_COMMAND_FIELD: struct.pack("<H", C_FIND_RQ),
            TAG_MESSAGE_ID: struct.pack("<H", message_id),
            TAG_PRIORITY: struct.pack("<H", priority),
            TAG_DATA_SET_TYPE: struct.pack("<H", DATA_SET_PRESENT),
        }
    )


def encode_c_cancel_rq(message_id_being_cancelled: int) -> bytes:
    """C-CANCEL-RQ (PS3.7 9.3.2.3): names the request it cancels in (0000,0120), no data set."""
    return encode_command_set(
        {
            TAG_COMMAND_FIELD: struct.pack("<H", C_CANCEL_RQ),
            TAG_MESSAGE_ID_RESPONDED: struct.pack("<H", message_id_being_cancelled),
            TAG_DATA_SET_TYPE: struct.pack("<H", NO_DATA_SET),
        }
    )


# Status (PS3.7 Annex C; C-FIND's own codes in PS3.4 C.4.1.1.4).
STATUS_SUCCESS = 0x0000
STATUS_CANCEL = 0xFE00
STATUS_PENDING = 0xFF00
STATUS_PENDING_WARNING = 0xFF01
"""Pending, but the peer does not support one or more of the optional keys asked for."""

StatusCategory = Literal["success", "pending", "cancel", "warning", "failure"]

_STATUS_WORDS = {
    STATUS_SUCCESS: "success",
    STATUS_CANCEL: "cancel",
    STATUS_PENDING: "pending",
    STATUS_PENDING_WARNING: "pending (optional keys not supported)",
    0x0001: "warning",
    0x0107: "warning: attribute list error",
    0x0116: "warning: attribute value out of range",
    0xB000: "warning: one or more failures or warnings",
    0xA700: "refused: out of resources",
    0xA701: "refused: out of resources (number of matches)",
    0xA702: "refused: out of resources (sub-operations)",
    0xA801: "refused: move destination unknown",
    0xA900: "failed: identifier does not match SOP class",
    0x0110: "failed: processing failure",
    0x0122: "failed: SOP class not supported",
    0x0124: "refused: not authorized",
    0x0211: "failed: unrecognized operation",
    0x0212: "failed: mistyped argument",
    0x0213: "failed: resource limitation",
}


def is_pending(status: int) -> bool:
    """A pending C-FIND response: a match follows, more may come (0xFF00, 0xFF01)."""
    return status in (STATUS_PENDING, STATUS_PENDING_WARNING)


def status_category(status: int) -> StatusCategory:
    """Which of the five kinds of PS3.7 Annex C a status is; unknown codes count as failures."""
    if status == STATUS_SUCCESS:
        return "success"
    if is_pending(status):
        return "pending"
    if status == STATUS_CANCEL:
        return "cancel"
    if status in (0x0001, 0x0107, 0x0116) or 0xB000 <= status <= 0xBFFF:
        return "warning"
    return "failure"


def status_words(status: int) -> str:
    """Words for a status, always ending in its hex code so two unknowns stay apart."""
    words = _STATUS_WORDS.get(status)
    if words is None:
        unable = 0xC000 <= status <= 0xCFFF
        words = "failed: unable to process" if unable else status_category(status)
    return f"{words} (0x{status:04x})"


@dataclass(frozen=True, slots=True)
class CommandSet:
    elements: dict[int, bytes]

    def us(self, tag: int) -> int | None:
        raw = self.elements.get(tag)
        if raw is None:
            return None
        if len(raw) != 2:
            raise DicomProtocolError(
                f"element ({tag >> 16:04x},{tag & 0xFFFF:04x}) is {len(raw)} bytes, not 2"
            )
        return int(struct.unpack("<H", raw)[0])

    @property
    def command_field(self) -> int | None:
        return self.us(TAG_COMMAND_FIELD)

    @property
    def status(self) -> int | None:
        return self.us(TAG_STATUS)

    @property
    def message_id(self) -> int | None:
        return self.us(TAG_MESSAGE_ID)

    @property
    def message_id_responded(self) -> int | None:
        return self.us(TAG_MESSAGE_ID_RESPONDED)

    @property
    def has_data_set(self) -> bool:
        value = self.us(TAG_DATA_SET_TYPE)
        return value is not None and value != NO_DATA_SET


def decode_command_set(raw: bytes) -> CommandSet:
    """Parse an implicit-VR-LE command set; only group 0000 is allowed there."""
    elements: dict[int, bytes] = {}
    pos, end = 0, len(raw)
    while pos < end:
        if end - pos < 8:
            raise DicomProtocolError(f"truncated command element at offset {pos}")
        group, elem, length = _ELEMENT.unpack_from(raw, pos)
        pos += 8
        if group != 0:
            raise DicomProtocolError(f"element ({group:04x},{elem:04x}) outside group 0000 in a command set")
        if pos + length > end:
            raise DicomProtocolError(f"command element (0000,{elem:04x}) of {length} bytes overruns the set")
        elements[elem] = raw[pos : pos + length]
        pos += length
        if len(elements) > _MAX_ELEMENTS:
            raise DicomProtocolError("command set with too many elements")
    return CommandSet(elements)
