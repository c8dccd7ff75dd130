"""A simulated PACS on loopback: the DICOM upper layer as an acceptor sees it, with AE-title policies.

The A-ASSOCIATE-RQ is decoded and the A-ASSOCIATE-AC/-RJ, A-ABORT, A-RELEASE-RP and P-DATA-TF
replies are encoded with pynetdicom's PDU codecs, deliberately independent of pacsaudit's own
client codec in `pacsaudit.dicom`, so that each checks the other. The C-ECHO command sets are
implicit VR little endian, parsed and built here by hand.

A policy with `studies` (or a C-FIND behaviour) also accepts Study Root Query/Retrieve FIND and
answers C-FIND at STUDY, SERIES and IMAGE level from its `SimStudy` list, with real matching on
StudyDate, PatientBirthDate, PatientID, Modality and the UIDs. C-FIND-RSP command sets and
identifiers are encoded with pydicom (again not pacsaudit's codec), in the negotiated transfer
syntax. An answer is streamed one response at a time, so a C-CANCEL-RQ read in between ends it;
it can also be capped (with status 0xFE00 or silently), refused, aborted, endless or malformed,
as real servers are.

Each connection is an `asyncio.Protocol` rather than a stream task: the lab also serves
benchmark fleets of thousands of endpoints on two cores, where a server's CPU per association
caps what the scanner can be measured at. For the same reason the A-ASSOCIATE-AC items are
cached per distinct request: scanners send the same contexts with different titles.

Every read is bounded: a PDU announcing more than `MAX_PDU_BYTES` is refused with an A-ABORT (a
C-FIND-RQ's command and identifier together, too), and a peer silent for `idle_timeout` seconds,
or not reading a streamed answer for as long, is dropped. After its last PDU (a reject, an
abort, a release) a server waits at most `artim_timeout` seconds for the peer to close. Nothing
here raises into the event loop.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import struct
from collections import Counter, deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import IntEnum
from functools import lru_cache
from io import BytesIO
from typing import Final, cast

from pydicom import config as pydicom_config
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import data_element_generator
from pydicom.filewriter import write_dataset
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
    "EXPLICIT_VR_LE",
    "IMPLICIT_VR_LE",
    "MAX_FIND_RESPONSES",
    "REJECT_BUSY",
    "REJECT_CALLED_AE",
    "REJECT_CALLING_AE",
    "STUDY_ROOT_FIND",
    "VERIFICATION",
    "AbortReason",
    "PacsPolicy",
    "PduType",
    "SimStudy",
    "SimulatedPacs",
    "encode_abort",
    "encode_accept",
    "encode_echo_response",
    "encode_find_response",
    "encode_reject",
    "start_simulated_pacs",
]

VERIFICATION: Final = "1.2.840.10008.1.1"
APPLICATION_CONTEXT: Final = "1.2.840.10008.3.1.1.1"
IMPLICIT_VR_LE: Final = "1.2.840.10008.1.2"
EXPLICIT_VR_LE: Final = "1.2.840.10008.1.2.1"
_EXPLICIT_VR_BE: Final = "1.2.840.10008.1.2.2"
_ACCEPTABLE_TRANSFER_SYNTAXES: Final = (
    IMPLICIT_VR_LE,
    EXPLICIT_VR_LE,
    _EXPLICIT_VR_BE,  # retired, still accepted by DCMTK (for Verification only here)
)
STUDY_ROOT_FIND: Final = "1.2.840.10008.5.1.4.1.2.2.1"
"""Study Root Query/Retrieve Information Model - FIND: the one C-FIND model the simulator answers."""
MAX_FIND_RESPONSES: Final = 200_000
"""Pending C-FIND responses one connection may be sent in all; past it an answer ends with 0xFE00."""

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
_C_FIND_RQ: Final = 0x0020
_C_FIND_RSP: Final = 0x8020
_C_CANCEL_RQ: Final = 0x0FFF
_NO_DATA_SET: Final = 0x0101
_DATA_SET_PRESENT: Final = 0x0000

# C-FIND statuses (PS3.4 C.4.1.1.4).
_SUCCESS: Final = 0x0000
_CANCEL: Final = 0xFE00
_PENDING: Final = 0xFF00
_IDENTIFIER_DOES_NOT_MATCH: Final = 0xA900
_UNABLE_TO_PROCESS: Final = 0xC000


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


_DA: Final = re.compile(r"[0-9]{8}")
_UID_ROOM: Final = 12
"""Characters a study UID leaves free for the synthetic series and instance UIDs (`.sss.iiiiii`)."""


def _check_text(name: str, value: str, limit: int = 64, *, multi: bool = False) -> None:
    if (
        len(value) > limit
        or any(not 0x20 <= ord(ch) <= 0x7E for ch in value)
        or (not multi and "\\" in value)
    ):
        raise ValueError(
            f"{name} must be at most {limit} printable ASCII characters" + ("" if multi else ", no backslash")
        )


def _is_day(value: str) -> bool:
    try:
        date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class SimStudy:
    """One study in a simulated archive: what C-FIND can match and return about it.

    Its series and instances are synthetic: series `i` (from 1) has UID `<study_uid>.i`, the
    modality `modalities[(i - 1) % len(modalities)]` (`OT` without any) and an equal share of the
    instances (the first series take the remainder); instance `j` has UID `<series_uid>.j`.
    """

    study_uid: str
    patient_id: str
    study_date: str
    """`YYYYMMDD`, or "" for an undated study (which no date key ever matches)."""
    modalities: tuple[str, ...]
    series: int
    instances: int
    institution: str | None = None
    other_patient_ids: str = ""
    """OtherPatientIDs, backslash-separated if several."""
    patient_birth_date: str = ""
    """`YYYYMMDD` or "": matched like StudyDate (an empty one matches no date key)."""

    def __post_init__(self) -> None:
        if not _UID.fullmatch(self.study_uid) or len(self.study_uid) > 64 - _UID_ROOM:
            raise ValueError(f"study_uid must be a UID of at most {64 - _UID_ROOM} characters")
        _check_text("patient_id", self.patient_id)
        _check_text("other_patient_ids", self.other_patient_ids, multi=True)
        if self.institution is not None:
            _check_text("institution", self.institution)
        for name, day in (("study_date", self.study_date), ("patient_birth_date", self.patient_birth_date)):
            if day and (not _DA.fullmatch(day) or not _is_day(day)):
                raise ValueError(f"{name} must be a real day as YYYYMMDD, or empty")
        for modality in self.modalities:
            _check_text("modality", modality, 16)
            if not modality:
                raise ValueError("an empty modality")
        if not 0 <= self.series <= 999 or not 0 <= self.instances <= 999_999:
            raise ValueError("series must be 0-999 and instances 0-999999")
        if self.series == 0 and self.instances:
            raise ValueError("instances need at least one series")
        if self.series and len(set(self.modalities)) > self.series:
            raise ValueError("more modalities than series to carry them")

    def series_instances(self) -> list[int]:
        """Instances in each series, in series order."""
        if not self.series:
            return []
        share, extra = divmod(self.instances, self.series)
        return [share + (index < extra) for index in range(self.series)]


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
    accept_contexts: frozenset[str] | None = None
    """Abstract syntaxes accepted (any others are refused with result 3). `None`: Verification, and
    Study Root FIND when the policy answers C-FIND (`answers_find`). Query/Retrieve MOVE and GET or
    Storage classes listed here are only negotiated: a C-MOVE, C-GET or C-STORE is aborted."""
    transfer_syntaxes: tuple[str, ...] = _ACCEPTABLE_TRANSFER_SYNTAXES
    """Transfer syntaxes accepted, in order of preference; contexts other than Verification take
    only the little-endian ones."""
    studies: tuple[SimStudy, ...] | None = None
    """The archive C-FIND answers from; `None` (the default) offers no C-FIND at all, `()` an empty one."""
    fills_number_of: bool = True
    """Fill ModalitiesInStudy, NumberOfStudyRelatedSeries/-Instances and NumberOfSeriesRelatedInstances
    when asked (Orthanc does); False leaves them empty, as DCMTK's dcmqrscp does."""
    find_ignored_keys: frozenset[int] = frozenset()
    """Tags (group << 16 | element) of matching keys this server ignores: any value matches, as on
    servers that match only on the attributes they index. The simulator matches on StudyDate,
    PatientBirthDate, PatientID, Modality and the UIDs; every other key is always ignored."""
    find_hierarchical: bool = False
    """Match nothing at SERIES (IMAGE) level unless one StudyInstanceUID (and one SeriesInstanceUID)
    is given: a strictly hierarchical server, which relational queries get nothing from."""
    find_cap: int | None = None
    """Answer at most N matches, then end with status 0xFE00 (cancel) if there were more, as Orthanc
    does with LimitFindResults."""
    find_silent_cap: int | None = None
    """Answer at most N matches, then end with status 0x0000 as if that were all: a silent cap."""
    find_status: int | None = None
    """Refuse every C-FIND with this status and no match (e.g. 0xA700, 0x0124, 0xC000)."""
    find_abort: bool = False
    """Answer every C-FIND-RQ with an A-ABORT (source 0, service user)."""
    find_endless: bool = False
    """Stream the same fake match again and again, until a C-CANCEL-RQ (then status 0xFE00), the
    peer leaves, or `MAX_FIND_RESPONSES` is reached."""
    find_garbage_identifier: bool = False
    """Send each match with a malformed identifier: its first element's length overruns the data set."""

    @property
    def answers_find(self) -> bool:
        """The policy says how to answer C-FIND: an archive, or a way of refusing or misbehaving."""
        return (
            self.studies is not None
            or self.find_status is not None
            or self.find_abort
            or self.find_endless
            or self.find_garbage_identifier
        )

    @property
    def accepted_abstract_syntaxes(self) -> frozenset[str]:
        if self.accept_contexts is not None:
            return self.accept_contexts
        return frozenset({VERIFICATION, STUDY_ROOT_FIND} if self.answers_find else {VERIFICATION})

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
        if self.find_status is not None and (
            not 0 <= self.find_status <= 0xFFFF or self.find_status in (_SUCCESS, _PENDING, 0xFF01)
        ):
            raise ValueError(
                "find_status must be a 16-bit status that ends an answer, not success or pending"
            )
        for name, cap in (("find_cap", self.find_cap), ("find_silent_cap", self.find_silent_cap)):
            if cap is not None and cap < 0:
                raise ValueError(f"{name} must be >= 0")
        for uid in self.accept_contexts or ():
            if not _UID.fullmatch(uid) or len(uid) > 64:
                raise ValueError(f"not a UID: {uid!r}")
        if not self.transfer_syntaxes or any(
            ts not in _ACCEPTABLE_TRANSFER_SYNTAXES for ts in self.transfer_syntaxes
        ):
            raise ValueError(
                "transfer_syntaxes must be some of implicit VR LE, explicit VR LE, explicit VR BE"
            )
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
    accepted_contexts: Mapping[int, tuple[str, str]]
    """Context ID -> (abstract syntax, transfer syntax) of each accepted presentation context."""
    peer_max_pdu: int
    """The requestor's maximum length received (0: unlimited)."""
    ac_items: bytes
    """The variable items of the A-ASSOCIATE-AC, encoded."""


def _choose_transfer_syntax(
    abstract_syntax: str | None, proposed: Sequence[str], policy: PacsPolicy
) -> tuple[int, str | None]:
    if abstract_syntax is None or abstract_syntax not in policy.accepted_abstract_syntaxes:
        return _CONTEXT_ABSTRACT_SYNTAX_NOT_SUPPORTED, proposed[0] if proposed else None
    for syntax in policy.transfer_syntaxes:  # in order of preference
        if syntax in proposed and (abstract_syntax == VERIFICATION or syntax != _EXPLICIT_VR_BE):
            return _CONTEXT_ACCEPTED, syntax
    return _CONTEXT_TRANSFER_SYNTAXES_NOT_SUPPORTED, proposed[0] if proposed else None


def _negotiate(pdu: bytes, policy: PacsPolicy, user_information: bytes) -> _Negotiation:
    """Decode a whole A-ASSOCIATE-RQ with pynetdicom and work out the A-ASSOCIATE-AC items."""
    request = A_ASSOCIATE_RQ()
    request.decode(pdu)
    application_context = ApplicationContextItem()
    application_context.application_context_name = APPLICATION_CONTEXT
    encoded = [application_context.encode()]
    accepted: dict[int, tuple[str, str]] = {}
    for context in request.presentation_context:
        context_id = context.context_id
        if context_id is None:
            raise ValueError("presentation context without an ID")
        abstract_syntax = context.abstract_syntax
        result, syntax = _choose_transfer_syntax(abstract_syntax, list(context.transfer_syntax), policy)
        item = PresentationContextItemAC()
        item.presentation_context_id = context_id
        item.result_reason = result
        if syntax is not None:
            transfer_syntax = TransferSyntaxSubItem()
            transfer_syntax.transfer_syntax_name = syntax
            item.transfer_syntax_sub_item = [transfer_syntax]
        encoded.append(item.encode())
        if result == _CONTEXT_ACCEPTED and abstract_syntax is not None and syntax is not None:
            accepted[context_id] = (str(abstract_syntax), str(syntax))
    peer_user_information = request.user_information
    peer_max = peer_user_information.maximum_length if peer_user_information is not None else None
    return _Negotiation(
        application_context_ok=request.application_context_name == APPLICATION_CONTEXT,
        accepted_contexts=accepted,
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
        policy = policy or PacsPolicy()
        negotiation = _negotiate(request, policy, _user_information(policy).encode())
    except Exception as exc:  # pynetdicom's decoders raise whatever a malformed item provokes
        raise ValueError("not a well-formed A-ASSOCIATE-RQ") from exc
    return _accept_pdu(request, negotiation)


# -- C-FIND: the query, the matches, the answers (encoded with pydicom) ------------------------

_QUERY_LEVEL: Final = 0x00080052
_STUDY_DATE: Final = 0x00080020
_SOP_INSTANCE_UID: Final = 0x00080018
_MODALITIES_IN_STUDY: Final = 0x00080061
_MODALITY: Final = 0x00080060
_INSTITUTION: Final = 0x00080080
_PATIENT_ID: Final = 0x00100020
_PATIENT_BIRTH_DATE: Final = 0x00100030
_OTHER_PATIENT_IDS: Final = 0x00101000
_STUDY_UID: Final = 0x0020000D
_SERIES_UID: Final = 0x0020000E
_SERIES_NUMBER: Final = 0x00200011
_INSTANCE_NUMBER: Final = 0x00200013
_SERIES_IN_STUDY: Final = 0x00201206
_INSTANCES_IN_STUDY: Final = 0x00201208
_INSTANCES_IN_SERIES: Final = 0x00201209

_STUDY_MATCHING: Final = frozenset({_STUDY_DATE, _PATIENT_ID, _PATIENT_BIRTH_DATE, _STUDY_UID})
_MATCHING_KEYS: Final = {
    "STUDY": _STUDY_MATCHING,
    "SERIES": _STUDY_MATCHING | {_SERIES_UID, _MODALITY},
    "IMAGE": _STUDY_MATCHING | {_SERIES_UID, _MODALITY, _SOP_INSTANCE_UID},
}
"""Keys matched on at each level (a non-empty value of any other key is ignored: universal)."""
_UID_KEYS: Final = frozenset({_STUDY_UID, _SERIES_UID, _SOP_INSTANCE_UID})
_TEXT_VRS: Final = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
_LONG_LENGTH_VRS: Final = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_MAX_QUERY_KEYS: Final = 256
_ENDLESS_STUDY: Final = SimStudy("2.25.314159265358979", "ENDLESS", "20000101", ("OT",), 1, 1)
"""The fake match an endless answer repeats."""


@dataclass(frozen=True)
class _Query:
    """A C-FIND-RQ identifier: its level and its keys, read with pydicom."""

    level: str
    keys: tuple[tuple[int, str, str], ...]
    """(tag, VR, value) of every key, in the request's order; values with their padding stripped."""

    def value(self, tag: int) -> str:
        return next((value for key, _, value in self.keys if key == tag), "")


def _dictionary_vr(tag: int) -> str:
    try:
        return str(dictionary_VR(tag)).split(" or ")[0]
    except KeyError:
        return "UN"


def _parse_query(raw: bytes, transfer_syntax: str) -> _Query:
    """Read an identifier with pydicom's element parser; `ValueError` if it is malformed.

    Only the structure is checked (every length inside the data set); values are taken as
    Latin-1 text, undecoded, so pydicom's value validation has nothing to say about a range.
    """
    keys: list[tuple[int, str, str]] = []
    end = 0
    undefined = False
    try:
        for element in data_element_generator(
            BytesIO(raw), transfer_syntax == IMPLICIT_VR_LE, transfer_syntax != _EXPLICIT_VR_BE
        ):
            if len(keys) >= _MAX_QUERY_KEYS:
                raise ValueError("too many keys")
            if not isinstance(element, RawDataElement):
                undefined = True  # a sequence of undefined length, parsed: not answered
                continue
            value = element.value or b""  # pydicom gives None for a zero-length value
            if len(value) != element.length:
                raise ValueError("a value overruns the identifier")
            end = max(end, element.value_tell + element.length)
            vr = element.VR or _dictionary_vr(int(element.tag))
            if vr != "SQ":
                keys.append((int(element.tag), vr, value.decode("latin-1").rstrip(" \x00")))
    except ValueError:
        raise
    except Exception as exc:  # whatever pydicom's parser makes of garbage
        raise ValueError("malformed identifier") from exc
    if end != len(raw) and not undefined:
        raise ValueError("bytes left after the last element")
    level = next((value for tag, _, value in keys if tag == _QUERY_LEVEL), "").strip().upper()
    return _Query(level, tuple(keys))


def _date_matches(value: str, wanted: str) -> bool:
    """Single date or range (`a-b`, `-b`, `a-`) matching, PS3.4 C.2.2.2.5; an empty date never matches."""
    if not value:
        return False
    if "-" not in wanted:
        return value == wanted
    first, _, last = wanted.partition("-")
    return (not first or value >= first) and (not last or value <= last)


@lru_cache(maxsize=256)
def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile(
        "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern), re.DOTALL
    )


def _matches(query: _Query, values: Mapping[int, str], level: str, ignored: frozenset[int]) -> bool:
    matching = _MATCHING_KEYS[level] - ignored
    for tag, _, wanted in query.keys:
        wanted = wanted.strip()
        if not wanted or tag not in matching or wanted == "*":
            continue
        value = values.get(tag, "")
        if tag in (_STUDY_DATE, _PATIENT_BIRTH_DATE):
            ok = _date_matches(value, wanted)
        elif tag in _UID_KEYS:
            ok = value in wanted.split("\\")
        else:
            ok = _wildcard(wanted).fullmatch(value) is not None
        if not ok:
            return False
    return True


def _single_uid(value: str) -> bool:
    return bool(value) and "\\" not in value and "*" not in value and "?" not in value


def _study_values(study: SimStudy, fills: bool) -> dict[int, str]:
    return {
        _STUDY_UID: study.study_uid,
        _STUDY_DATE: study.study_date,
        _PATIENT_ID: study.patient_id,
        _OTHER_PATIENT_IDS: study.other_patient_ids,
        _PATIENT_BIRTH_DATE: study.patient_birth_date,
        _INSTITUTION: study.institution or "",
        _MODALITIES_IN_STUDY: "\\".join(dict.fromkeys(study.modalities)) if fills else "",
        _SERIES_IN_STUDY: str(study.series) if fills else "",
        _INSTANCES_IN_STUDY: str(study.instances) if fills else "",
    }


def _matching_entities(query: _Query, policy: PacsPolicy) -> Iterator[dict[int, str]]:
    """The values of every study, series or image (by the query's level) the query matches, in order."""
    level = query.level
    if policy.find_hierarchical and level != "STUDY":
        unique = (_STUDY_UID,) if level == "SERIES" else (_STUDY_UID, _SERIES_UID)
        if not all(_single_uid(query.value(tag).strip()) for tag in unique):
            return
    fills = policy.fills_number_of
    ignored = policy.find_ignored_keys
    for study in policy.studies or ():
        values = _study_values(study, fills)
        if not _matches(query, values, "STUDY", ignored):
            continue
        if level == "STUDY":
            yield values
            continue
        for number, count in enumerate(study.series_instances(), start=1):
            series_uid = f"{study.study_uid}.{number}"
            modality = study.modalities[(number - 1) % len(study.modalities)] if study.modalities else "OT"
            series = values | {
                _SERIES_UID: series_uid,
                _MODALITY: modality,
                _SERIES_NUMBER: str(number),
                _INSTANCES_IN_SERIES: str(count) if fills else "",
            }
            if not _matches(query, series, "SERIES", ignored):
                continue
            if level == "SERIES":
                yield series
                continue
            for instance in range(1, count + 1):
                image = series | {
                    _SOP_INSTANCE_UID: f"{series_uid}.{instance}",
                    _INSTANCE_NUMBER: str(instance),
                }
                if _matches(query, image, "IMAGE", ignored):
                    yield image


def _encode_data_set(data_set: Dataset, transfer_syntax: str) -> bytes:
    out = DicomBytesIO()
    out.is_little_endian = transfer_syntax != _EXPLICIT_VR_BE
    out.is_implicit_VR = transfer_syntax == IMPLICIT_VR_LE
    write_dataset(out, data_set)
    return bytes(out.getvalue())


def _encode_identifier(query: _Query, values: Mapping[int, str], transfer_syntax: str) -> bytes:
    """A match: exactly the keys asked for, with this entity's values (empty where it has none)."""
    identifier = Dataset()
    for tag, vr, _ in query.keys:
        value = query.level if tag == _QUERY_LEVEL else values.get(tag, "")
        identifier.add(
            DataElement(tag, vr, value if vr in _TEXT_VRS else None, validation_mode=pydicom_config.IGNORE)
        )
    return _encode_data_set(identifier, transfer_syntax)


def _overrun(identifier: bytes, transfer_syntax: str) -> bytes:
    """The identifier with its first element claiming more bytes than the whole data set holds."""
    garbage = bytearray(identifier)
    claimed = len(identifier) + 16
    if transfer_syntax == IMPLICIT_VR_LE:
        garbage[4:8] = claimed.to_bytes(4, "little")
    elif bytes(garbage[4:6]) in _LONG_LENGTH_VRS:
        garbage[8:12] = claimed.to_bytes(4, "little")
    else:
        garbage[6:8] = min(claimed, 0xFFFE).to_bytes(2, "little")
    return bytes(garbage)


@lru_cache(maxsize=1024)
def encode_find_response(
    message_id: int, status: int, has_identifier: bool = False, sop_class_uid: str = STUDY_ROOT_FIND
) -> bytes:
    """The command set of a C-FIND-RSP (PS3.7 9.3.2.2), implicit VR little endian, encoded by pydicom."""
    command = Dataset()
    command.AffectedSOPClassUID = sop_class_uid
    command.CommandField = _C_FIND_RSP
    command.MessageIDBeingRespondedTo = message_id
    command.CommandDataSetType = _DATA_SET_PRESENT if has_identifier else _NO_DATA_SET
    command.Status = status
    body = _encode_data_set(command, IMPLICIT_VR_LE)
    group = Dataset()
    group.CommandGroupLength = len(body)
    return _encode_data_set(group, IMPLICIT_VR_LE) + body


def _find_answers(
    policy: PacsPolicy, query: _Query | None, transfer_syntax: str
) -> Iterator[tuple[int, bytes | None]]:
    """The responses to one C-FIND-RQ: (pending status, identifier) per match, then (final status, None)."""
    if policy.find_status is not None:
        yield policy.find_status, None
        return
    if query is None:
        yield _UNABLE_TO_PROCESS, None
        return
    if query.level not in _MATCHING_KEYS:
        yield _IDENTIFIER_DOES_NOT_MATCH, None
        return
    if policy.find_endless:
        fake = _encode_identifier(query, _study_values(_ENDLESS_STUDY, True), transfer_syntax)
        while True:  # the connection's MAX_FIND_RESPONSES, a C-CANCEL-RQ or the peer ends it
            yield _PENDING, fake
    for sent, values in enumerate(_matching_entities(query, policy)):
        if policy.find_cap is not None and sent >= policy.find_cap:
            yield _CANCEL, None
            return
        if policy.find_silent_cap is not None and sent >= policy.find_silent_cap:
            yield _SUCCESS, None
            return
        identifier = _encode_identifier(query, values, transfer_syntax)
        if policy.find_garbage_identifier:
            identifier = _overrun(identifier, transfer_syntax)
        yield _PENDING, identifier
    yield _SUCCESS, None


class _FindAnswer:
    """One C-FIND being answered, one response at a time, so that a C-CANCEL-RQ is heard in between."""

    def __init__(
        self,
        association: _Association,
        context_id: int,
        message_id: int,
        responses: Iterator[tuple[int, bytes | None]],
        peer_max_pdu: int,
    ) -> None:
        self.association = association
        self.context_id = context_id
        self.message_id = message_id
        self.cancelled = False
        self._responses = responses
        self._peer_max_pdu = peer_max_pdu

    def _message(self, status: int, identifier: bytes | None) -> bytes:
        command = encode_find_response(self.message_id, status, identifier is not None)
        out = _p_data_tf(self.context_id, command, self._peer_max_pdu)
        if identifier is not None:
            out += _p_data_tf(self.context_id, identifier, self._peer_max_pdu, command=False)
        return out

    def pdus(self) -> Iterator[bytes]:
        """P-DATA-TF bytes per response; the final one ends the answer (0xFE00 once cancelled)."""
        association = self.association
        pacs = association._pacs
        previous: tuple[bytes | None, bytes] = (None, b"")
        for status, identifier in self._responses:
            if identifier is not None and (self.cancelled or association.pending_sent >= MAX_FIND_RESPONSES):
                status, identifier = _CANCEL, None
            if identifier is None:
                association.answer_over(self)
                yield self._message(status, None)
                return
            association.pending_sent += 1
            pacs.find_responses += 1
            if identifier is not previous[0]:  # an endless answer repeats one identifier: encode it once
                previous = (identifier, self._message(status, identifier))
            yield previous[1]


_Reply = tuple[bytes, bool]
"""Bytes to send, and whether the association is over once they are sent."""


class _Association:
    """One association on the acceptor side: whole PDUs in, replies out. No sockets here."""

    def __init__(self, pacs: SimulatedPacs) -> None:
        self._pacs = pacs
        self._negotiation: _Negotiation | None = None
        self._command = bytearray()
        self._data = bytearray()
        self._command_elements: dict[int, bytes] | None = None
        """The command set, once complete, of a message whose data set is still arriving."""
        self._message_context: int | None = None
        self._answer: _FindAnswer | None = None
        """The C-FIND being answered (until its final response goes out)."""
        self._started: _FindAnswer | None = None
        self.pending_sent = 0
        """Pending C-FIND responses sent on this association, bounded by `MAX_FIND_RESPONSES`."""

    def take_answer(self) -> Iterator[bytes] | None:
        """The C-FIND answer the last PDU started, if any, for the connection to stream."""
        started, self._started = self._started, None
        return None if started is None else started.pdus()

    def answer_over(self, answer: _FindAnswer) -> None:
        if self._answer is answer:
            self._answer = None

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
            if self._message_context not in (None, context_id):
                return invalid
            self._message_context = context_id
            is_command = bool(control & 0x01)
            if is_command:
                if self._command_elements is not None:
                    return invalid  # a command fragment after the last one
                self._command += fragment
            elif self._command_elements is None:
                return encode_abort(0, 0), True  # a data set no command announced
            else:
                self._data += fragment
            if len(self._command) + len(self._data) > MAX_PDU_BYTES:
                return invalid
            if not control & 0x02:
                continue
            if is_command:
                try:
                    elements = _command_elements(bytes(self._command))
                except ValueError:
                    return encode_abort(0, 0), True
                if _uint16(elements.get(0x0800)) != _NO_DATA_SET:
                    if _uint16(elements.get(0x0100)) != _C_FIND_RQ:
                        return encode_abort(
                            0, 0
                        ), True  # of what is served here, only C-FIND carries a data set
                    self._command_elements = elements
                    continue
                reply = self._message(context_id, elements, None, negotiation)
            else:
                assert self._command_elements is not None
                reply = self._message(context_id, self._command_elements, bytes(self._data), negotiation)
            self._command.clear()
            self._data.clear()
            self._command_elements = None
            self._message_context = None
            if reply[1]:
                return reply
            replies.append(reply[0])
        return b"".join(replies), False

    def _message(
        self, context_id: int, elements: dict[int, bytes], data_set: bytes | None, negotiation: _Negotiation
    ) -> _Reply:
        """One whole DIMSE message: C-ECHO-RQ, C-FIND-RQ (Study Root) or C-CANCEL-RQ; anything else aborts."""
        abort = encode_abort(0, 0), True
        command_field = _uint16(elements.get(0x0100))
        if command_field == _C_CANCEL_RQ and data_set is None:
            self._pacs.cancels += 1
            answer = self._answer
            if answer is not None and _uint16(elements.get(0x0120)) == answer.message_id:
                answer.cancelled = True
            return b"", False  # a late C-CANCEL-RQ (after the final response) is ignored, PS3.7 9.3.2.3
        message_id = _uint16(elements.get(0x0110))
        if message_id is None or self._answer is not None:  # no asynchronous operations negotiated
            return abort
        abstract_syntax, transfer_syntax = negotiation.accepted_contexts[context_id]
        if command_field == _C_ECHO_RQ and data_set is None:
            self._pacs.echoes += 1
            sop_class = elements.get(0x0002, b"").rstrip(b"\x00 ").decode("ascii", "replace") or VERIFICATION
            response = encode_echo_response(message_id, self._pacs.policy.echo_status, sop_class)
            return _p_data_tf(context_id, response, negotiation.peer_max_pdu), False
        if command_field == _C_FIND_RQ and data_set is not None and abstract_syntax == STUDY_ROOT_FIND:
            return self._find(context_id, message_id, data_set, transfer_syntax, negotiation.peer_max_pdu)
        return abort

    def _find(
        self, context_id: int, message_id: int, identifier: bytes, transfer_syntax: str, peer_max_pdu: int
    ) -> _Reply:
        pacs = self._pacs
        policy = pacs.policy
        try:
            query: _Query | None = _parse_query(identifier, transfer_syntax)
        except ValueError:
            query = None
        pacs.finds[query.level if query is not None else ""] += 1
        if policy.find_abort:
            return encode_abort(0, 0), True
        responses = _find_answers(policy, query, transfer_syntax)
        self._answer = self._started = _FindAnswer(self, context_id, message_id, responses, peer_max_pdu)
        return b"", False


def _p_data_tf(context_id: int, payload: bytes, peer_max_pdu: int, *, command: bool = True) -> bytes:
    """P-DATA-TF PDUs carrying a command or data set, fragmented to fit the peer's maximum PDU length."""
    room = peer_max_pdu - 6 if peer_max_pdu > 6 else len(payload)  # 6: PDV length, context ID, header
    chunks = [payload[i : i + room] for i in range(0, len(payload), room)] or [b""]
    pdus: list[bytes] = []
    for index, chunk in enumerate(chunks):
        item = PresentationDataValueItem()
        item.presentation_context_id = context_id
        header = (0x01 if command else 0x00) | (0x02 if index == len(chunks) - 1 else 0x00)
        item.presentation_data_value = bytes([header]) + chunk
        pdu = P_DATA_TF()
        pdu.presentation_data_value_items = [item]
        pdus.append(pdu.encode())
    return b"".join(pdus)


class _Connection(asyncio.Protocol):
    """PDU framing, the read bounds and the idle timer around one `_Association`.

    A C-FIND answer is written by a task, one response at a time, yielding to the loop after
    each (so `data_received` hears a C-CANCEL-RQ or an A-ABORT mid-answer) and waiting while the
    transport's buffer is full (so a peer that stops reading holds up the answer, not memory).
    """

    def __init__(self, pacs: SimulatedPacs) -> None:
        self._pacs = pacs
        self._loop = asyncio.get_running_loop()
        self._association = _Association(pacs)
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._done = False
        self._last_activity = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self._writable: asyncio.Future[None] | None = None
        """Set while the transport's write buffer is above its high-water mark."""
        self._streams: set[asyncio.Task[None]] = set()
        self.lost: asyncio.Future[None] = self._loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop TLS: alike, not a subclass
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
                answer = self._association.take_answer()
            except Exception:  # a codec surprise must end this association, not the lab
                reply, close, answer = encode_abort(2, AbortReason.NOT_SPECIFIED), True, None
            if close:
                self._finish(reply)
                return
            if reply and self._transport is not None:
                self._transport.write(reply)
            if answer is not None:
                task = self._loop.create_task(self._stream(answer))
                self._streams.add(task)
                task.add_done_callback(self._streams.discard)

    async def _stream(self, answer: Iterator[bytes]) -> None:
        """Write one C-FIND answer, a response at a time, until its final response or the end of the peer."""
        try:
            for pdus in answer:
                if self._done or self._transport is None:
                    return
                self._transport.write(pdus)
                self._last_activity = self._loop.time()
                if self._writable is not None:
                    await self._writable  # resolved when the peer reads again, or is gone
                else:
                    await asyncio.sleep(0)  # let data_received run: a C-CANCEL-RQ must be heard mid-answer
        except Exception:  # a codec surprise must end this association, not the lab
            self._finish(encode_abort(2, AbortReason.NOT_SPECIFIED))

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    def eof_received(self) -> bool:
        self._done = True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._done = True
        self.resume_writing()
        for task in list(self._streams):
            task.cancel()
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
        self.finds: Counter[str] = Counter()
        """C-FIND-RQs received, by query level ("" for an identifier that could not be read)."""
        self.find_responses = 0
        """Pending C-FIND responses sent, over all connections."""
        self.cancels = 0
        """C-CANCEL-RQs received."""
        self.titles_seen: deque[tuple[str, str]] = deque(maxlen=4096)
        """(called, calling) of the most recent A-ASSOCIATE-RQs."""
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._user_information = _user_information(policy).encode()
        self._negotiations: dict[bytes, _Negotiation | None] = {}

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, tls: ssl.SSLContext | None = None
    ) -> None:
        """Listen; with `tls` (a server context), every connection is DICOM over TLS."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self),
            require_loopback(host),
            port,
            ssl=tls,
            ssl_handshake_timeout=self.idle_timeout if tls is not None else None,
        )
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
            negotiation: _Negotiation | None = _negotiate(pdu, self.policy, self._user_information)
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
    tls: ssl.SSLContext | None = None,
) -> SimulatedPacs:
    """Start a simulated PACS listening on `host` (loopback only) and `port` (0: any free port).

    With `tls` (a server-side `ssl.SSLContext`) it serves DICOM over TLS.
    """
    pacs = SimulatedPacs(policy, idle_timeout=idle_timeout, artim_timeout=artim_timeout)
    await pacs.start(host, port, tls=tls)
    return pacs
