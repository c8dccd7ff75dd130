"""DIMSE command sets (PS3.7 section 9, E): group 0000 elements, always implicit VR little endian.

Only the few elements pacsaudit sends or reads are known by name; a command set is parsed
into `{tag: raw bytes}` with every length checked, so a hostile command set is an error,
not a crash.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache

from pacsaudit.dicom.pdu import DicomProtocolError

__all__ = [
    "C_ECHO_RQ",
    "C_ECHO_RSP",
    "CommandSet",
    "decode_command_set",
    "encode_c_echo_rq",
    "encode_command_set",
]

C_ECHO_RQ = 0x0030
C_ECHO_RSP = 0x8030
NO_DATA_SET = 0x0101

TAG_AFFECTED_SOP_CLASS = 0x00000002
TAG_COMMAND_FIELD = 0x00000100
TAG_MESSAGE_ID = 0x00000110
TAG_MESSAGE_ID_RESPONDED = 0x00000120
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
