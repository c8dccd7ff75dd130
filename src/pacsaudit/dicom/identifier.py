"""C-FIND identifiers (PS3.4 C.4.1.1.3): encode the keys we ask for, read back only the keys we keep.

An identifier is a plain DICOM data set in the presentation context's transfer syntax:
implicit VR little endian or explicit VR little endian, the only two pacsaudit proposes.

Answers come from untrusted peers and carry patient data, so the decoder is bounded and
discreet: every length is checked against what remains, nesting and element count are
capped, everything not asked for (sequences included) is skipped without being decoded, and
an error message names tag numbers and offsets only, never a byte of a value.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from pacsaudit.dicom.constants import (
    DEFLATED_EXPLICIT_VR_LE,
    EXPLICIT_VR_BE,
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
)
from pacsaudit.dicom.pdu import DicomProtocolError

__all__ = ["MAX_ELEMENTS", "MAX_NESTING", "decode_identifier", "encode_identifier"]

MAX_ELEMENTS = 10_000
"""Element headers (items and delimiters included, at any depth) one identifier may hold."""
MAX_NESTING = 16
"""Sequences inside sequences; real query answers rarely nest at all."""

UNDEFINED_LENGTH = 0xFFFFFFFF
ITEM = 0xFFFEE000
ITEM_DELIMITER = 0xFFFEE00D
SEQUENCE_DELIMITER = 0xFFFEE0DD
SPECIFIC_CHARACTER_SET = 0x00080005

_TAG = struct.Struct("<HH")
_IMPLICIT_HEADER = struct.Struct("<HHL")
_EXPLICIT_SHORT = struct.Struct("<HH2sH")
_EXPLICIT_LONG = struct.Struct("<HH2s2xL")

_TEXT_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
_NUMERIC_VRS = {"US": "<H", "UL": "<L", "SS": "<h", "SL": "<l"}
_ENCODABLE_VRS = _TEXT_VRS - {"UC", "UR", "UT"} | {"US"}
"""Kept to the VRs with a 2-byte length in explicit VR, which is all a query needs."""
_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
_SHORT_VRS = frozenset(
    {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "PN", "SH", "SL", "SS"}
    | {"ST", "TM", "UI", "UL", "US"}
)
_UNDEFINED_LENGTH_VRS = frozenset({"SQ", "UN", "OB", "OW"})


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04x},{tag & 0xFFFF:04x})"


def _is_explicit(transfer_syntax: str) -> bool:
    if transfer_syntax == IMPLICIT_VR_LE:
        return False
    if transfer_syntax == EXPLICIT_VR_LE:
        return True
    if transfer_syntax in (EXPLICIT_VR_BE, DEFLATED_EXPLICIT_VR_LE):
        raise DicomProtocolError(
            f"transfer syntax {transfer_syntax} was never proposed; only implicit and explicit VR "
            "little endian identifiers are handled"
        )
    raise DicomProtocolError(f"transfer syntax {transfer_syntax[:64]!r} is not one pacsaudit handles")


# Encoding


def _value_bytes(tag: int, vr: str, value: str | list[str]) -> bytes:
    values = [value] if isinstance(value, str) else list(value)
    if vr == "US":
        numbers = [v.strip() for v in "\\".join(values).split("\\")] if any(values) else []
        try:
            return b"".join(struct.pack("<H", int(n)) for n in numbers)
        except (ValueError, struct.error):
            raise ValueError(f"{_tag_text(tag)} US value is not a list of 0-65535 integers") from None
    if not isinstance(value, str) and any("\\" in v for v in values):
        raise ValueError(f"{_tag_text(tag)}: a backslash inside one of several values")
    try:
        raw = "\\".join(values).encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"{_tag_text(tag)}: query values must be ASCII") from None
    if len(raw) % 2:
        raw += b"\x00" if vr == "UI" else b" "
    return raw


def encode_identifier(elements: Sequence[tuple[int, str, str | list[str]]], transfer_syntax: str) -> bytes:
    """Encode (tag, VR, value) query keys, sorted by tag, in `transfer_syntax`.

    An empty value is a universal-matching return key (zero length); a list is multi-valued
    (backslash-separated). Values are ASCII: keys, dates, ranges, wildcards and UIDs.
    """
    explicit = _is_explicit(transfer_syntax)
    out = bytearray()
    seen: set[int] = set()
    for tag, vr, value in sorted(elements, key=lambda e: e[0]):
        if tag in seen:
            raise ValueError(f"{_tag_text(tag)} given twice")
        seen.add(tag)
        group = tag >> 16
        if not 0 <= tag <= 0xFFFFFFFF or group in (0x0000, 0x0002, 0xFFFE):
            raise ValueError(f"{_tag_text(tag)} cannot be part of an identifier")
        if vr not in _ENCODABLE_VRS:
            raise ValueError(f"{_tag_text(tag)}: VR {vr!r} is not one the encoder writes")
        raw = _value_bytes(tag, vr, value)
        if len(raw) > 0xFFFF:
            raise ValueError(f"{_tag_text(tag)}: value longer than 65535 bytes")
        if explicit:
            out += _EXPLICIT_SHORT.pack(group, tag & 0xFFFF, vr.encode("ascii"), len(raw))
        else:
            out += _IMPLICIT_HEADER.pack(group, tag & 0xFFFF, len(raw))
        out += raw
    return bytes(out)


# Decoding


class _Parser:
    """One pass over one identifier; a stack instead of recursion, so depth is a counter."""

    __slots__ = ("count", "end", "explicit", "raw")

    def __init__(self, raw: bytes, explicit: bool) -> None:
        self.raw = raw
        self.end = len(raw)
        self.explicit = explicit
        self.count = 0

    def header(self, pos: int, explicit: bool) -> tuple[int, str | None, int, int]:
        """(tag, VR or None, length, offset of the value) of the element at `pos`."""
        self.count += 1
        if self.count > MAX_ELEMENTS:
            raise DicomProtocolError(f"identifier with more than {MAX_ELEMENTS} elements (offset {pos})")
        left = self.end - pos
        if left < 8:
            raise DicomProtocolError(f"truncated element header at offset {pos}")
        group, elem = _TAG.unpack_from(self.raw, pos)
        tag = group << 16 | elem
        if group == 0xFFFE or not explicit:
            _, _, length = _IMPLICIT_HEADER.unpack_from(self.raw, pos)
            return tag, None, length, pos + 8
        vr_bytes = self.raw[pos + 4 : pos + 6]
        vr = vr_bytes.decode("latin-1")
        if vr in _SHORT_VRS:
            _, _, _, length = _EXPLICIT_SHORT.unpack_from(self.raw, pos)
            return tag, vr, length, pos + 8
        if vr in _LONG_VRS:
            if left < 12:
                raise DicomProtocolError(f"truncated element header of {_tag_text(tag)} at offset {pos}")
            _, _, _, length = _EXPLICIT_LONG.unpack_from(self.raw, pos)
            return tag, vr, length, pos + 12
        raise DicomProtocolError(f"element {_tag_text(tag)} at offset {pos} has an invalid VR")

    def skip_value(self, tag: int, length: int, at: int) -> int:
        if length > self.end - at:
            raise DicomProtocolError(f"element {_tag_text(tag)} at offset {at} overruns the identifier")
        return at + length

    def skip_undefined(self, pos: int, explicit: bool) -> int:
        """Skip the items of an undefined-length sequence whose first item header is at `pos`.

        Each frame on the stack is one undefined-length container still open: a sequence
        (items until a sequence delimiter) or an item (elements until an item delimiter).
        Defined-length items and elements are jumped over by their (checked) length.
        """
        stack: list[tuple[bool, bool, int]] = [(True, explicit, pos)]  # (is_sequence, explicit, start)
        depth = 1
        while stack:
            is_sequence, frame_explicit, start = stack[-1]
            if pos >= self.end:
                kind = "sequence" if is_sequence else "item"
                raise DicomProtocolError(f"undefined-length {kind} at offset {start} is never delimited")
            tag, vr, length, at = self.header(pos, frame_explicit)
            if tag in (SEQUENCE_DELIMITER, ITEM_DELIMITER):
                if tag != (SEQUENCE_DELIMITER if is_sequence else ITEM_DELIMITER):
                    raise DicomProtocolError(f"misplaced delimiter {_tag_text(tag)} at offset {pos}")
                if length != 0:
                    raise DicomProtocolError(f"delimiter {_tag_text(tag)} at offset {pos} has a length")
                stack.pop()
                depth -= is_sequence
                pos = at
            elif is_sequence:
                if tag != ITEM:
                    raise DicomProtocolError(f"element {_tag_text(tag)} at offset {pos} inside a sequence")
                if length == UNDEFINED_LENGTH:
                    stack.append((False, frame_explicit, pos))
                    pos = at
                else:
                    pos = self.skip_value(tag, length, at)
            elif tag >> 16 == 0xFFFE:
                raise DicomProtocolError(f"{_tag_text(tag)} at offset {pos} inside an item")
            elif length == UNDEFINED_LENGTH:
                self.check_undefined(tag, vr, pos)
                if depth >= MAX_NESTING:
                    raise DicomProtocolError(f"sequences nested deeper than {MAX_NESTING} at offset {pos}")
                # A UN of undefined length is encoded in implicit VR (PS3.5 6.2.2).
                stack.append((True, frame_explicit and vr != "UN", pos))
                depth += 1
                pos = at
            else:
                pos = self.skip_value(tag, length, at)
        return pos

    @staticmethod
    def check_undefined(tag: int, vr: str | None, pos: int) -> None:
        if vr is not None and vr not in _UNDEFINED_LENGTH_VRS:
            raise DicomProtocolError(f"element {_tag_text(tag)} at offset {pos} has an undefined length")


def _text(raw: bytes, utf8: bool) -> str:
    """Value bytes as text; Latin-1 keeps every byte (what counting and hashing need) and never fails."""
    text = raw.decode("utf-8", errors="replace") if utf8 else raw.decode("latin-1")
    return text.rstrip(" \x00")


def decode_identifier(raw: bytes, transfer_syntax: str, wanted: frozenset[int]) -> dict[int, str]:
    """The top-level `wanted` elements of an identifier, as text with trailing padding stripped.

    Text VRs come back as they are (multiple values still backslash-separated); in explicit
    VR, US/UL/SS/SL come back as decimal text. Sequences and binary VRs are skipped even if
    asked for. In implicit VR the VR is unknown, so `wanted` must name text attributes.
    Text is UTF-8 when (0008,0005) says ISO_IR 192, Latin-1 (byte for byte) otherwise.
    The first of two equal tags wins. Malformed input raises `DicomProtocolError`.
    """
    explicit = _is_explicit(transfer_syntax)
    parser = _Parser(raw, explicit)
    found: dict[int, str] = {}
    utf8 = False
    pos = 0
    while pos < parser.end:
        tag, vr, length, at = parser.header(pos, explicit)
        if tag >> 16 == 0xFFFE:
            raise DicomProtocolError(f"{_tag_text(tag)} at offset {pos} outside any sequence")
        if length == UNDEFINED_LENGTH:
            parser.check_undefined(tag, vr, pos)
            pos = parser.skip_undefined(at, explicit and vr != "UN")
            continue
        end = parser.skip_value(tag, length, at)
        if tag == SPECIFIC_CHARACTER_SET:
            utf8 = b"ISO_IR 192" in raw[at:end]
        if tag in wanted and tag not in found:
            if vr is None or vr in _TEXT_VRS:
                found[tag] = _text(raw[at:end], utf8)
            elif vr in _NUMERIC_VRS:
                fmt = _NUMERIC_VRS[vr]
                size = struct.calcsize(fmt)
                if length % size:
                    raise DicomProtocolError(f"element {_tag_text(tag)} at offset {pos} has a ragged length")
                found[tag] = "\\".join(str(v[0]) for v in struct.iter_unpack(fmt, raw[at:end]))
        pos = end
    return found
