"""DICOM upper-layer PDUs (PS3.8 section 9.3) as pacsaudit's client needs them: bytes <-> typed objects.

Encoding covers what a client sends (A-ASSOCIATE-RQ, P-DATA-TF, A-RELEASE-RQ, A-ABORT);
decoding covers what a server answers (A-ASSOCIATE-AC/-RJ, P-DATA-TF, A-RELEASE-RP, A-ABORT).
Decoders distrust every length: an item that overruns its PDU is a `DicomProtocolError`,
never an IndexError or a silent short read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from pacsaudit.dicom.constants import APPLICATION_CONTEXT, PduType

__all__ = [
    "Abort",
    "AssociateAccept",
    "AssociateReject",
    "AssociateRequest",
    "DicomProtocolError",
    "PresentationContext",
    "PresentationDataValue",
    "decode_abort",
    "decode_associate_accept",
    "decode_associate_reject",
    "decode_p_data",
    "encode_abort",
    "encode_associate_request",
    "encode_p_data",
    "encode_release_request",
]

_HEADER = struct.Struct(">BBL")
_ITEM_HEADER = struct.Struct(">BBH")
_PROTOCOL_VERSION = struct.pack(">HH", 1, 0)
_RESERVED_32 = bytes(32)


class DicomProtocolError(Exception):
    """The peer spoke something DICOM-shaped that breaks PS3.8."""


class PresentationContext(NamedTuple):
    """One proposed presentation context: an odd ID, an abstract syntax, transfer syntaxes.

    A named tuple: every request of a scan looks its encoded items up by its contexts, and a
    tuple hashes in C where a dataclass runs a Python `__hash__` per context.
    """

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


class AssociateRequest(NamedTuple):
    """What an A-ASSOCIATE-RQ proposes (a named tuple: a sweep makes one per endpoint)."""

    called_ae: str
    calling_ae: str
    contexts: tuple[PresentationContext, ...]
    max_pdu_length: int
    implementation_class_uid: str
    implementation_version_name: str | None = None


@dataclass(frozen=True, slots=True)
class AssociateAccept:
    """A decoded A-ASSOCIATE-AC. `contexts` maps context ID to (result, transfer syntax)."""

    contexts: dict[int, tuple[int, str | None]] = field(default_factory=dict)
    max_pdu_length: int | None = None
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    application_context: str | None = None


@dataclass(frozen=True, slots=True)
class AssociateReject:
    result: int
    source: int
    reason: int


@dataclass(frozen=True, slots=True)
class Abort:
    source: int
    reason: int


@dataclass(frozen=True, slots=True)
class PresentationDataValue:
    context_id: int
    is_command: bool
    is_last: bool
    data: bytes


def _ae_field(title: str) -> bytes:
    raw = title.encode("ascii")
    if not 0 < len(raw) <= 16:
        raise ValueError(f"AE title must be 1-16 characters: {title!r}")
    return raw.ljust(16, b" ")


def _uid(value: str) -> bytes:
    """UIDs travel unpadded inside upper-layer items (PS3.8 9.3.2.2.1 allows either)."""
    return value.encode("ascii")


def _item(item_type: int, body: bytes) -> bytes:
    return _ITEM_HEADER.pack(item_type, 0, len(body)) + body


def encode_associate_request(rq: AssociateRequest) -> bytes:
    """A-ASSOCIATE-RQ (PS3.8 9.3.2) with the application context, contexts and user information."""
    head, tail = _request_frame(
        rq.contexts, rq.max_pdu_length, rq.implementation_class_uid, rq.implementation_version_name
    )
    return b"".join((head, _ae_field(rq.called_ae), _ae_field(rq.calling_ae), tail))


@lru_cache(maxsize=64)
def _request_frame(
    contexts: tuple[PresentationContext, ...],
    max_pdu_length: int,
    implementation_class_uid: str,
    implementation_version_name: str | None,
) -> tuple[bytes, bytes]:
    """Everything but the two AE titles, identical for every request of a scan: encoded once.

    The titles are fixed-width fields, so the PDU's length does not depend on them: what comes
    before them (header, protocol version, reserved) and after (reserved, items) is constant.
    """
    items = _RESERVED_32 + _request_items(
        contexts, max_pdu_length, implementation_class_uid, implementation_version_name
    )
    length = len(_PROTOCOL_VERSION) + 32 + len(items)
    return _HEADER.pack(PduType.ASSOCIATE_RQ, 0, length) + _PROTOCOL_VERSION, items


def _request_items(
    contexts: tuple[PresentationContext, ...],
    max_pdu_length: int,
    implementation_class_uid: str,
    implementation_version_name: str | None,
) -> bytes:
    """The variable items: application context, presentation contexts, user information."""
    items = [_item(0x10, _uid(APPLICATION_CONTEXT))]
    for pc in contexts:
        sub = _item(0x30, _uid(pc.abstract_syntax)) + b"".join(
            _item(0x40, _uid(ts)) for ts in pc.transfer_syntaxes
        )
        items.append(_item(0x20, bytes((pc.context_id, 0, 0, 0)) + sub))
    user = _item(0x51, struct.pack(">L", max_pdu_length)) + _item(0x52, _uid(implementation_class_uid))
    if implementation_version_name:
        user += _item(0x55, implementation_version_name.encode("ascii"))
    items.append(_item(0x50, user))
    return b"".join(items)


def encode_p_data(values: list[PresentationDataValue]) -> bytes:
    """P-DATA-TF (PS3.8 9.3.5): each PDV is length, context ID, control header, fragment."""
    body = b"".join(
        struct.pack(
            ">LBB", len(v.data) + 2, v.context_id, (1 if v.is_command else 0) | (2 if v.is_last else 0)
        )
        + v.data
        for v in values
    )
    return _HEADER.pack(PduType.P_DATA_TF, 0, len(body)) + body


def encode_release_request() -> bytes:
    return _HEADER.pack(PduType.RELEASE_RQ, 0, 4) + bytes(4)


def encode_abort(source: int = 0, reason: int = 0) -> bytes:
    return _HEADER.pack(PduType.ABORT, 0, 4) + bytes((0, 0, source, reason))


_TEXTS: dict[bytes, str] = {}
_TEXTS_KEPT = 1024


def _ascii(raw: bytes) -> str:
    """Text of a UID or name item: trailing NUL/space padding off, anything non-ASCII escaped.

    Memoised (a sweep decodes the same few UIDs thousands of times), in a bounded table so a
    peer sending endless new strings cannot grow it.
    """
    text = _TEXTS.get(raw)
    if text is None:
        text = raw.rstrip(b"\x00 ").decode("ascii", errors="backslashreplace")
        if len(_TEXTS) < _TEXTS_KEPT:
            _TEXTS[raw] = text
    return text


def _items(body: bytes, start: int) -> list[tuple[int, bytes]]:
    """Split variable items; every declared length must fit inside the PDU."""
    out: list[tuple[int, bytes]] = []
    pos, end = start, len(body)
    while pos < end:
        if end - pos < 4:
            raise DicomProtocolError(f"truncated item header at offset {pos}")
        item_type, _, length = _ITEM_HEADER.unpack_from(body, pos)
        pos += 4
        if pos + length > end:
            raise DicomProtocolError(
                f"item 0x{item_type:02x} of {length} bytes overruns the PDU at offset {pos}"
            )
        out.append((item_type, body[pos : pos + length]))
        pos += length
    return out


_ACCEPTS: dict[bytes, AssociateAccept] = {}
_ACCEPTS_KEPT = 256
_ACCEPT_KEY_MAX = 2048


def decode_associate_accept(body: bytes) -> AssociateAccept:
    """Decode the body (after the 6-byte header) of an A-ASSOCIATE-AC (PS3.8 9.3.3).

    Only the items after the fixed part are read (the echoed AE titles are not), and a
    server answers every stranger with the same items, as do the members of a clone fleet:
    decoded answers are kept, in a bounded table of small answers, keyed by those items.
    The result is frozen, so sharing it is safe.
    """
    if len(body) < 68:
        raise DicomProtocolError(
            f"A-ASSOCIATE-AC body of {len(body)} bytes is shorter than its fixed part (68)"
        )
    items = body[68:]
    known = _ACCEPTS.get(items)
    if known is not None:
        return known
    accept = _decode_accept_items(body)
    if len(items) <= _ACCEPT_KEY_MAX and len(_ACCEPTS) < _ACCEPTS_KEPT:
        _ACCEPTS[items] = accept
    return accept


def _decode_accept_items(body: bytes) -> AssociateAccept:
    contexts: dict[int, tuple[int, str | None]] = {}
    app_context = max_pdu = impl_uid = impl_version = None
    for item_type, value in _items(body, 68):
        if item_type == 0x10:
            app_context = _ascii(value)
        elif item_type == 0x21:
            if len(value) < 4:
                raise DicomProtocolError("presentation context item shorter than 4 bytes")
            ts = None
            if len(value) >= 8 and value[4] == 0x40 and 8 + int.from_bytes(value[6:8]) == len(value):
                ts = _ascii(value[8:])  # the usual shape: exactly one transfer syntax sub-item
            else:
                for sub_type, sub in _items(value, 4):
                    if sub_type == 0x40:
                        ts = _ascii(sub)
            contexts[value[0]] = (value[2], ts)
        elif item_type == 0x50:
            for sub_type, sub in _items(value, 0):
                if sub_type == 0x51:
                    if len(sub) != 4:
                        raise DicomProtocolError(f"maximum-length sub-item of {len(sub)} bytes, not 4")
                    max_pdu = struct.unpack(">L", sub)[0]
                elif sub_type == 0x52:
                    impl_uid = _ascii(sub)
                elif sub_type == 0x55:
                    impl_version = _ascii(sub)
    return AssociateAccept(
        contexts=contexts,
        max_pdu_length=max_pdu,
        implementation_class_uid=impl_uid or None,
        implementation_version_name=impl_version or None,
        application_context=app_context,
    )


def decode_associate_reject(body: bytes) -> AssociateReject:
    if len(body) != 4:
        raise DicomProtocolError(f"A-ASSOCIATE-RJ body of {len(body)} bytes, not 4")
    return AssociateReject(result=body[1], source=body[2], reason=body[3])


def decode_abort(body: bytes) -> Abort:
    if len(body) != 4:
        raise DicomProtocolError(f"A-ABORT body of {len(body)} bytes, not 4")
    return Abort(source=body[2], reason=body[3])


def decode_p_data(body: bytes) -> list[PresentationDataValue]:
    """Split a P-DATA-TF body into its PDVs; a PDV must hold at least its two header bytes."""
    values: list[PresentationDataValue] = []
    pos, end = 0, len(body)
    while pos < end:
        if end - pos < 6:
            raise DicomProtocolError(f"truncated PDV header at offset {pos}")
        (length,) = struct.unpack_from(">L", body, pos)
        if length < 2 or pos + 4 + length > end:
            raise DicomProtocolError(f"PDV of {length} bytes does not fit the P-DATA-TF at offset {pos}")
        control = body[pos + 5]
        values.append(
            PresentationDataValue(
                context_id=body[pos + 4],
                is_command=bool(control & 1),
                is_last=bool(control & 2),
                data=body[pos + 6 : pos + 4 + length],
            )
        )
        pos += 4 + length
    if not values:
        raise DicomProtocolError("P-DATA-TF without any PDV")
    return values
