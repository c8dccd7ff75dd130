"""A simulated PACS on loopback: the DICOM upper layer as an acceptor sees it, with AE-title policies.

The A-ASSOCIATE-RQ is decoded and the A-ASSOCIATE-AC/-RJ, A-ABORT, A-RELEASE-RP and P-DATA-TF
replies are encoded with pynetdicom's PDU codecs, deliberately independent of pacsaudit's own
client codec in `pacsaudit.dicom`, so that each checks the other. The C-ECHO command sets are
implicit VR little endian, parsed and built here by hand.

Each connection is an `asyncio.Protocol` rather than a stream task: the lab also serves
benchmark fleets of thousands of endpoints on two cores, where a server's CPU per association
caps what the scanner can be measured at. For the same reason the A-ASSOCIATE-AC items are
cached per distinct request: scanners send the same contexts with different titles.

Every read is bounded: a PDU announcing more than `MAX_PDU_BYTES` is refused with an A-ABORT, and
a peer silent for `idle_timeout` seconds is dropped. After its last PDU (a reject, an abort, a
release) a server waits at most `artim_timeout` seconds for the peer to close. Nothing here
raises into the event loop.
"""

from __future__ import annotations

import asyncio
import re
import struct
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from typing import Final

from pynetdicom.pdu import A_ABORT_RQ, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ, A_RELEASE_RP, P_DATA_TF
from pynetdicom.pdu_items import (
    ApplicationContextItem,
    ImplementationClassUIDSubItem,
    ImplementationVersionNameSubItem,
    MaximumLengthSubItem,
    PresentationContextItemAC,
    PresentationDataValueItem,
    TransferSyntaxSubItem,
    UserInformationItem,
)

from pacsaudit.lab._net import IDLE_TIMEOUT, MAX_PDU_BYTES, require_loopback

__all__ = [
    "APPLICATION_CONTEXT",
    "ARTIM_TIMEOUT",
    "IMPLICIT_VR_LE",
    "REJECT_BUSY",
    "REJECT_CALLED_AE",
    "REJECT_CALLING_AE",
    "VERIFICATION",
    "AbortReason",
    "PacsPolicy",
    "PduType",
    "SimulatedPacs",
    "encode_abort",
    "encode_accept",
    "encode_echo_response",
    "encode_reject",
    "start_simulated_pacs",
]

VERIFICATION: Final = "1.2.840.10008.1.1"
APPLICATION_CONTEXT: Final = "1.2.840.10008.3.1.1.1"
IMPLICIT_VR_LE: Final = "1.2.840.10008.1.2"
_ACCEPTABLE_TRANSFER_SYNTAXES: Final = (
    IMPLICIT_VR_LE,
    "1.2.840.10008.1.2.1",  # explicit VR little endian
    "1.2.840.10008.1.2.2",  # explicit VR big endian (retired, still accepted by DCMTK)
)

# A-ASSOCIATE-RJ (result, source, reason), PS3.8 table 9-21.
REJECT_CALLED_AE: Final = (1, 1, 7)
"""Rejected-permanent by the service user: called AE title not recognized."""
REJECT_CALLING_AE: Final = (1, 1, 3)
"""Rejected-permanent by the service user: calling AE title not recognized."""
REJECT_BUSY: Final = (2, 3, 2)
"""Rejected-transient by the service provider (presentation): local limit exceeded."""
_REJECT_APPLICATION_CONTEXT: Final = (1, 1, 2)
_REJECT_PROTOCOL_VERSION: Final = (1, 2, 2)

# Presentation context results in the A-ASSOCIATE-AC, PS3.8 table 9-18.
_CONTEXT_ACCEPTED: Final = 0
_CONTEXT_ABSTRACT_SYNTAX_NOT_SUPPORTED: Final = 3
_CONTEXT_TRANSFER_SYNTAXES_NOT_SUPPORTED: Final = 4

_C_ECHO_RQ: Final = 0x0030
_C_ECHO_RSP: Final = 0x8030
_NO_DATA_SET: Final = 0x0101


class PduType(IntEnum):
    """PDU types of the DICOM upper layer, PS3.8 9.3.1."""

    ASSOCIATE_RQ = 0x01
    ASSOCIATE_AC = 0x02
    ASSOCIATE_RJ = 0x03
    P_DATA_TF = 0x04
    RELEASE_RQ = 0x05
    RELEASE_RP = 0x06
    ABORT = 0x07


_UID: Final = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
ARTIM_TIMEOUT: Final = 2.0
"""Default wait for the peer to close the connection after the server's last PDU (PS3.8 9.1.5)."""

_KNOWN_PDU_TYPES: Final = frozenset(int(pdu_type) for pdu_type in PduType)


class AbortReason(IntEnum):
    """A-ABORT reasons when the source is the service provider (2), PS3.8 table 9-26."""

    NOT_SPECIFIED = 0
    UNRECOGNIZED_PDU = 1
    UNEXPECTED_PDU = 2
    UNRECOGNIZED_PDU_PARAMETER = 4
    UNEXPECTED_PDU_PARAMETER = 5
    INVALID_PDU_PARAMETER_VALUE = 6


@dataclass(frozen=True)
class PacsPolicy:
    """How one simulated PACS answers an A-ASSOCIATE-RQ, and what it says about itself.

    The checks run in the order of the fields: abort, reject everything, busy, then the called
    and the calling AE title.
    """

    called_aets: frozenset[str] | None = None
    """Called AE titles accepted; `None` accepts any."""
    calling_aets: frozenset[str] | None = None
    """Calling AE titles accepted; `None` accepts any."""
    lying_reason: bool = False
    """Refuse an unknown calling AE with reason 7 (called AE not recognized), as DCMTK dcmqrscp does."""
    reject_all: tuple[int, int, int] | None = None
    """Reject every association with this (result, source, reason)."""
    busy_times: int = 0
    """Reject the first N associations as busy: result 2, source 3, reason 2 (local limit exceeded)."""
    abort_on_associate: bool = False
    """Answer every A-ASSOCIATE-RQ with an A-ABORT (source 0, service user)."""
    implementation_class_uid: str = "1.2.276.0.7230010.3.0.3.6.7"
    implementation_version_name: str | None = "OFFIS_DCMTK_367"
    """`None` leaves the (optional) version name sub-item out of the A-ASSOCIATE-AC."""
    max_pdu_length: int = 16384
    """Maximum length received, announced in the A-ASSOCIATE-AC (0: unlimited)."""
    echo_status: int = 0x0000
    """Status of every C-ECHO-RSP."""

    @property
    def accepts_anyone(self) -> bool:
        """Every association is accepted, whatever the titles: the archive is open to any AE."""
        return (
            self.called_aets is None
            and self.calling_aets is None
            and self.reject_all is None
            and self.busy_times == 0
            and not self.abort_on_associate
        )

    def __post_init__(self) -> None:
        if self.busy_times < 0:
            raise ValueError("busy_times must be >= 0")
        if not 0 <= self.max_pdu_length <= 0xFFFFFFFF:
            raise ValueError("max_pdu_length must fit in 32 bits")
        if not 0 <= self.echo_status <= 0xFFFF:
            raise ValueError("echo_status must fit in 16 bits")
        if self.reject_all is not None:
            result, source, reason = self.reject_all
            if result not in (1, 2) or source not in (1, 2, 3) or not 0 <= reason <= 255:
                raise ValueError(f"not an A-ASSOCIATE-RJ (result, source, reason): {self.reject_all}")
        if not _UID.fullmatch(self.implementation_class_uid) or len(self.implementation_class_uid) > 64:
            raise ValueError(f"not a UID: {self.implementation_class_uid!r}")
        _user_information(self)  # a bad version name fails here, not on the first association


def encode_reject(result: int, source: int, reason: int) -> bytes:
    """An A-ASSOCIATE-RJ PDU."""
    return _encode_reject(result, source, reason)


def encode_abort(source: int, reason: int = 0) -> bytes:
    """An A-ABORT PDU."""
    return _encode_abort(source, reason)


@lru_cache(maxsize=64)
def _encode_reject(result: int, source: int, reason: int) -> bytes:
    pdu = A_ASSOCIATE_RJ()
    pdu.result = result
    pdu.source = source
    pdu.reason_diagnostic = reason
    return pdu.encode()


@lru_cache(maxsize=64)
def _encode_abort(source: int, reason: int) -> bytes:
    pdu = A_ABORT_RQ()
    pdu.source = source
    pdu.reason_diagnostic = reason
    return pdu.encode()


_RELEASE_RP: Final = A_RELEASE_RP().encode()


def _element(element: int, value: bytes) -> bytes:
    """One command-group element, implicit VR little endian: (0000,eeee), 32-bit length, value."""
    return struct.pack("<HHI", 0x0000, element, len(value)) + value


def encode_echo_response(message_id: int, status: int, sop_class_uid: str = VERIFICATION) -> bytes:
    """The command set of a C-ECHO-RSP (PS3.7 9.3.5.2), implicit VR little endian."""
    uid = sop_class_uid.encode("ascii")
    if len(uid) % 2:
        uid += b"\x00"
    body = (
        _element(0x0002, uid)  # Affected SOP Class UID
        + _element(0x0100, struct.pack("<H", _C_ECHO_RSP))  # Command Field
        + _element(0x0120, struct.pack("<H", message_id))  # Message ID Being Responded To
        + _element(0x0800, struct.pack("<H", _NO_DATA_SET))  # Command Data Set Type
        + _element(0x0900, struct.pack("<H", status))  # Status
    )
    return _element(0x0000, struct.pack("<I", len(body))) + body  # Command Group Length first


def _command_elements(data: bytes) -> dict[int, bytes]:
    """Element number -> value of a command set (group 0000, implicit VR little endian)."""
    elements: dict[int, bytes] = {}
    offset = 0
    while offset < len(data):
        if offset + 8 > len(data):
            raise ValueError("truncated element header")
        group, element, length = struct.unpack_from("<HHI", data, offset)
        offset += 8
        if group != 0x0000 or offset + length > len(data):
            raise ValueError("not a command element, or value overruns the command set")
        elements[element] = data[offset : offset + length]
        offset += length
    return elements


def _uint16(value: bytes | None) -> int | None:
    return int.from_bytes(value, "little") if value is not None and len(value) == 2 else None


def _user_information(policy: PacsPolicy) -> UserInformationItem:
    max_length = MaximumLengthSubItem()
    max_length.maximum_length_received = policy.max_pdu_length
    class_uid = ImplementationClassUIDSubItem()
    class_uid.implementation_class_uid = policy.implementation_class_uid
    item = UserInformationItem()
    item.user_data = [max_length, class_uid]
    if policy.implementation_version_name is not None:
        version = ImplementationVersionNameSubItem()
        version.implementation_version_name = policy.implementation_version_name
        item.user_data.append(version)
    return item


def _items_fit(data: bytes, start: int, end: int) -> bool:
    """Do the items in data[start:end] (type, reserved, 16-bit length, value) tile it exactly?

    pynetdicom checks this with `assert`, which `python -O` removes; the lab must not depend on it.
    """
    offset = start
    while offset < end:
        if offset + 4 > end:
            return False
        item_type = data[offset]
        length = int.from_bytes(data[offset + 2 : offset + 4], "big")
        item_end = offset + 4 + length
        if item_end > end:
            return False
        if item_type == 0x20 and (length < 4 or not _items_fit(data, offset + 8, item_end)):
            return False
        if item_type == 0x50 and not _items_fit(data, offset + 4, item_end):
            return False
        offset = item_end
    return True


def _ae_title(raw: bytes) -> str | None:
    """A 16-byte AE title field without its non-significant spaces; `None` if invalid."""
    title = raw.decode("latin-1").strip(" ")
    if not title or any(not 0x20 <= ord(ch) <= 0x7E or ch == "\\" for ch in title):
        return None
    return title


@dataclass(frozen=True)
class _Negotiation:
    """What the variable items of one A-ASSOCIATE-RQ lead to, whatever the AE titles."""

    application_context_ok: bool
    accepted_contexts: frozenset[int]
    peer_max_pdu: int
    """The requestor's maximum length received (0: unlimited)."""
    ac_items: bytes
    """The variable items of the A-ASSOCIATE-AC, encoded."""


def _choose_transfer_syntax(abstract_syntax: str | None, proposed: Sequence[str]) -> tuple[int, str | None]:
    if abstract_syntax != VERIFICATION:
        return _CONTEXT_ABSTRACT_SYNTAX_NOT_SUPPORTED, proposed[0] if proposed else None
    for syntax in _ACCEPTABLE_TRANSFER_SYNTAXES:  # in order of preference
        if syntax in proposed:
            return _CONTEXT_ACCEPTED, syntax
    return _CONTEXT_TRANSFER_SYNTAXES_NOT_SUPPORTED, proposed[0] if proposed else None


def _negotiate(pdu: bytes, user_information: bytes) -> _Negotiation:
    """Decode a whole A-ASSOCIATE-RQ with pynetdicom and work out the A-ASSOCIATE-AC items."""
    request = A_ASSOCIATE_RQ()
    request.decode(pdu)
    application_context = ApplicationContextItem()
    application_context.application_context_name = APPLICATION_CONTEXT
    encoded = [application_context.encode()]
    accepted: set[int] = set()
    for context in request.presentation_context:
        context_id = context.context_id
        if context_id is None:
            raise ValueError("presentation context without an ID")
        result, syntax = _choose_transfer_syntax(context.abstract_syntax, list(context.transfer_syntax))
        item = PresentationContextItemAC()
        item.presentation_context_id = context_id
        item.result_reason = result
        if syntax is not None:
            transfer_syntax = TransferSyntaxSubItem()
            transfer_syntax.transfer_syntax_name = syntax
            item.transfer_syntax_sub_item = [transfer_syntax]
        encoded.append(item.encode())
        if result == _CONTEXT_ACCEPTED:
            accepted.add(context_id)
    peer_user_information = request.user_information
    peer_max = peer_user_information.maximum_length if peer_user_information is not None else None
    return _Negotiation(
        application_context_ok=request.application_context_name == APPLICATION_CONTEXT,
        accepted_contexts=frozenset(accepted),
        peer_max_pdu=peer_max or 0,
        ac_items=b"".join(encoded) + user_information,
    )


def _accept_pdu(request: bytes, negotiation: _Negotiation) -> bytes:
    """The A-ASSOCIATE-AC: protocol version 1, the request's titles echoed (PS3.8 table 9-17), items."""
    body = b"\x00\x01\x00\x00" + request[10:42] + bytes(32) + negotiation.ac_items
    return b"\x02\x00" + struct.pack(">I", len(body)) + body


def encode_accept(request: bytes, policy: PacsPolicy | None = None) -> bytes:
    """The A-ASSOCIATE-AC a PACS with `policy` would send for `request`, AE titles aside.

    Raises `ValueError` if `request` is not a well-formed A-ASSOCIATE-RQ PDU.
    """
    if (
        len(request) < 74
        or request[0] != PduType.ASSOCIATE_RQ
        or int.from_bytes(request[2:6], "big") != len(request) - 6
        or not _items_fit(request, 74, len(request))
        or _ae_title(request[10:26]) is None
        or _ae_title(request[26:42]) is None
    ):
        raise ValueError("not a well-formed A-ASSOCIATE-RQ")
    try:
        negotiation = _negotiate(request, _user_information(policy or PacsPolicy()).encode())
    except Exception as exc:  # pynetdicom's decoders raise whatever a malformed item provokes
        raise ValueError("not a well-formed A-ASSOCIATE-RQ") from exc
    return _accept_pdu(request, negotiation)


_Reply = tuple[bytes, bool]
"""Bytes to send, and whether the association is over once they are sent."""


class _Association:
    """One association on the acceptor side: whole PDUs in, replies out. No sockets here."""

    def __init__(self, pacs: SimulatedPacs) -> None:
        self._pacs = pacs
        self._negotiation: _Negotiation | None = None
        self._command = bytearray()
        self._command_context: int | None = None

    def handle(self, pdu: bytes) -> _Reply:
        pdu_type = pdu[0]
        if pdu_type == PduType.ABORT:
            return b"", True
        if self._negotiation is None:
            if pdu_type == PduType.ASSOCIATE_RQ:
                return self._associate(pdu)
        elif pdu_type == PduType.P_DATA_TF:
            return self._p_data(pdu)
        elif pdu_type == PduType.RELEASE_RQ:
            return _RELEASE_RP, True
        if pdu_type in _KNOWN_PDU_TYPES:
            return encode_abort(2, AbortReason.UNEXPECTED_PDU), True
        return encode_abort(2, AbortReason.UNRECOGNIZED_PDU), True

    def _associate(self, pdu: bytes) -> _Reply:
        pacs = self._pacs
        policy = pacs.policy
        invalid = encode_abort(2, AbortReason.INVALID_PDU_PARAMETER_VALUE), True
        if len(pdu) < 74 or not _items_fit(pdu, 74, len(pdu)):
            return invalid
        called, calling = _ae_title(pdu[10:26]), _ae_title(pdu[26:42])
        if called is None or calling is None:
            return invalid
        pacs.associations += 1
        pacs.titles_seen.append((called, calling))

        if policy.abort_on_associate:
            return encode_abort(0, 0), True
        if policy.reject_all is not None:
            return encode_reject(*policy.reject_all), True
        if pacs.associations <= policy.busy_times:
            return encode_reject(*REJECT_BUSY), True
        if not pdu[7] & 0x01:  # protocol version: bit 0 is version 1
            return encode_reject(*_REJECT_PROTOCOL_VERSION), True

        negotiation = pacs._negotiation_for(pdu)
        if negotiation is None:
            return invalid
        if not negotiation.application_context_ok:
            return encode_reject(*_REJECT_APPLICATION_CONTEXT), True
        if policy.called_aets is not None and called not in policy.called_aets:
            return encode_reject(*REJECT_CALLED_AE), True
        if policy.calling_aets is not None and calling not in policy.calling_aets:
            return encode_reject(*(REJECT_CALLED_AE if policy.lying_reason else REJECT_CALLING_AE)), True

        self._negotiation = negotiation
        return _accept_pdu(pdu, negotiation), False

    def _p_data(self, pdu: bytes) -> _Reply:
        negotiation = self._negotiation
        assert negotiation is not None
        invalid = encode_abort(2, AbortReason.INVALID_PDU_PARAMETER_VALUE), True
        offset, end = 6, len(pdu)
        if offset == end:
            return invalid
        replies: list[bytes] = []
        while offset < end:
            if offset + 6 > end:
                return invalid
            length = int.from_bytes(pdu[offset : offset + 4], "big")
            context_id, control = pdu[offset + 4], pdu[offset + 5]
            fragment = pdu[offset + 6 : offset + 4 + length]
            offset += 4 + length
            if length < 2 or offset > end or context_id not in negotiation.accepted_contexts:
                return invalid
            if not control & 0x01:
                return encode_abort(0, 0), True  # a data set: nothing negotiated here carries one
            if self._command_context not in (None, context_id):
                return invalid
            self._command_context = context_id
            self._command += fragment
            if len(self._command) > MAX_PDU_BYTES:
                return invalid
            if control & 0x02:
                reply = self._command_complete(context_id, bytes(self._command), negotiation.peer_max_pdu)
                self._command.clear()
                self._command_context = None
                if reply is None:
                    return encode_abort(0, 0), True
                replies.append(reply)
        return b"".join(replies), False

    def _command_complete(self, context_id: int, command: bytes, peer_max_pdu: int) -> bytes | None:
        try:
            elements = _command_elements(command)
        except ValueError:
            return None
        message_id = _uint16(elements.get(0x0110))
        if (
            _uint16(elements.get(0x0100)) != _C_ECHO_RQ
            or message_id is None
            or _uint16(elements.get(0x0800)) != _NO_DATA_SET
        ):
            return None
        self._pacs.echoes += 1
        sop_class = elements.get(0x0002, b"").rstrip(b"\x00 ").decode("ascii", "replace") or VERIFICATION
        response = encode_echo_response(message_id, self._pacs.policy.echo_status, sop_class)
        return _p_data_tf(context_id, response, peer_max_pdu)


def _p_data_tf(context_id: int, command: bytes, peer_max_pdu: int) -> bytes:
    """P-DATA-TF PDUs carrying `command`, fragmented to fit the peer's maximum PDU length."""
    room = peer_max_pdu - 6 if peer_max_pdu > 6 else len(command)  # 6: PDV length, context ID, header
    chunks = [command[i : i + room] for i in range(0, len(command), room)] or [b""]
    pdus: list[bytes] = []
    for index, chunk in enumerate(chunks):
        item = PresentationDataValueItem()
        item.presentation_context_id = context_id
        last = index == len(chunks) - 1
        item.presentation_data_value = bytes([0x03 if last else 0x01]) + chunk  # command fragment
        pdu = P_DATA_TF()
        pdu.presentation_data_value_items = [item]
        pdus.append(pdu.encode())
    return b"".join(pdus)


class _Connection(asyncio.Protocol):
    """PDU framing, the read bounds and the idle timer around one `_Association`."""

    def __init__(self, pacs: SimulatedPacs) -> None:
        self._pacs = pacs
        self._loop = asyncio.get_running_loop()
        self._association = _Association(pacs)
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._done = False
        self._last_activity = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self.lost: asyncio.Future[None] = self._loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._pacs._connections.add(self)
        self._timer = self._loop.call_at(self._last_activity + self._pacs.idle_timeout, self._check_idle)

    def data_received(self, data: bytes) -> None:
        if self._done:
            return
        self._last_activity = self._loop.time()
        buffer = self._buffer
        buffer += data
        while len(buffer) >= 6:
            length = int.from_bytes(buffer[2:6], "big")
            if length > MAX_PDU_BYTES:
                self._finish(encode_abort(2, AbortReason.INVALID_PDU_PARAMETER_VALUE))
                return
            if len(buffer) < 6 + length:
                return
            pdu = bytes(buffer[: 6 + length])
            del buffer[: 6 + length]
            try:
                reply, close = self._association.handle(pdu)
            except Exception:  # a codec surprise must end this association, not the lab
                reply, close = encode_abort(2, AbortReason.NOT_SPECIFIED), True
            if close:
                self._finish(reply)
                return
            if reply and self._transport is not None:
                self._transport.write(reply)

    def eof_received(self) -> bool:
        self._done = True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._done = True
        if self._timer is not None:
            self._timer.cancel()
        self._pacs._connections.discard(self)
        if not self.lost.done():
            self.lost.set_result(None)

    def abort(self) -> None:
        self._done = True
        if self._transport is not None:
            self._transport.abort()

    def _finish(self, reply: bytes) -> None:
        """Send the last PDU, then wait for the peer to close, as PS3.8 state 13 does.

        Closing at once (as some servers do) races the requestor's reading of that PDU: pynetdicom
        then sometimes reports an abort instead of the reject. The ARTIM timer bounds the wait.
        """
        self._done = True
        if self._transport is None:
            return
        if not reply:  # the peer aborted: nothing to wait for (PS3.8 AA-3)
            self._transport.close()
            return
        self._transport.write(reply)
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(self._pacs.artim_timeout, self.abort)

    def _check_idle(self) -> None:
        due = self._last_activity + self._pacs.idle_timeout
        if self._loop.time() >= due:
            self.abort()
        else:
            self._timer = self._loop.call_at(due, self._check_idle)


class SimulatedPacs:
    """A listening simulated PACS. Use `start_simulated_pacs`, then `close()` or `async with`."""

    def __init__(
        self, policy: PacsPolicy, *, idle_timeout: float = IDLE_TIMEOUT, artim_timeout: float = ARTIM_TIMEOUT
    ) -> None:
        self.policy = policy
        self.idle_timeout = idle_timeout
        """Seconds of silence from the peer before the connection is dropped."""
        self.artim_timeout = artim_timeout
        """Seconds to wait for the peer to close after a reject, an abort or a release."""
        self.host = ""
        self.port = 0
        self.associations = 0
        """A-ASSOCIATE-RQs received with valid titles, whatever the answer was."""
        self.echoes = 0
        """C-ECHO-RQs answered."""
        self.titles_seen: deque[tuple[str, str]] = deque(maxlen=4096)
        """(called, calling) of the most recent A-ASSOCIATE-RQs."""
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._user_information = _user_information(policy).encode()
        self._negotiations: dict[bytes, _Negotiation | None] = {}

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), require_loopback(host), port)
        self.host, self.port = self._server.sockets[0].getsockname()[:2]

    async def close(self) -> None:
        """Stop listening and drop every open connection at once."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        connections = list(self._connections)
        for connection in connections:
            connection.abort()
        if connections:
            await asyncio.wait([c.lost for c in connections], timeout=5)
        await server.wait_closed()

    async def __aenter__(self) -> SimulatedPacs:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _negotiation_for(self, pdu: bytes) -> _Negotiation | None:
        """The negotiation for this request's variable items, decoded once per distinct request."""
        key = pdu[74:]
        try:
            return self._negotiations[key]
        except KeyError:
            pass
        try:
            negotiation: _Negotiation | None = _negotiate(pdu, self._user_information)
        except Exception:  # pynetdicom's decoders raise whatever a malformed item provokes
            negotiation = None
        if len(self._negotiations) >= 256:
            self._negotiations.clear()
        self._negotiations[key] = negotiation
        return negotiation


async def start_simulated_pacs(
    policy: PacsPolicy,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    idle_timeout: float = IDLE_TIMEOUT,
    artim_timeout: float = ARTIM_TIMEOUT,
) -> SimulatedPacs:
    """Start a simulated PACS listening on `host` (loopback only) and `port` (0: any free port)."""
    pacs = SimulatedPacs(policy, idle_timeout=idle_timeout, artim_timeout=artim_timeout)
    await pacs.start(host, port)
    return pacs
