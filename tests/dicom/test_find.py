"""C-FIND on the wire: golden C-FIND-RQ / C-CANCEL-RQ bytes, status words, and `Association.find`
driven through a real `PduTransport` against scripted peers (honest, slow to cancel, deaf to
cancel, hostile).

The peer sees every DIMSE message pacsaudit writes and answers by feeding bytes back exactly
as the event loop would, one PDU per loop iteration, so a C-CANCEL-RQ races the remaining
answers as it does on a real network.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import UID
from pynetdicom.dimse_messages import C_CANCEL_RQ as PynetdicomCancel
from pynetdicom.dimse_messages import C_FIND_RQ as PynetdicomFind
from pynetdicom.dimse_primitives import C_CANCEL, C_FIND
from pynetdicom.dsutils import encode as pynetdicom_encode

from pacsaudit.dicom import constants
from pacsaudit.dicom.association import (
    MAX_READS_AFTER_CANCEL,
    Association,
    AssociationAbortedError,
    ContextNotAcceptedError,
    FindResponse,
)
from pacsaudit.dicom.constants import EXPLICIT_VR_LE, IMPLICIT_VR_LE, STUDY_ROOT_FIND, VERIFICATION
from pacsaudit.dicom.dimse import (
    C_CANCEL_RQ,
    C_ECHO_RSP,
    C_FIND_RQ,
    C_FIND_RSP,
    STATUS_CANCEL,
    STATUS_PENDING,
    STATUS_PENDING_WARNING,
    STATUS_SUCCESS,
    CommandSet,
    decode_command_set,
    encode_c_cancel_rq,
    encode_c_find_rq,
    encode_command_set,
    is_pending,
    status_category,
    status_words,
)
from pacsaudit.dicom.identifier import decode_identifier, encode_identifier
from pacsaudit.dicom.pdu import (
    AssociateAccept,
    AssociateRequest,
    DicomProtocolError,
    PresentationContext,
    PresentationDataValue,
    decode_p_data,
    encode_abort,
    encode_p_data,
)
from pacsaudit.dicom.reader import PduLimits
from pacsaudit.dicom.transport import PduTransport

from .fakes import RecordingTransport

# Golden bytes: implicit VR little endian command sets (tag, 4-byte length, value).

C_FIND_RQ_7 = bytes.fromhex(
    "0000 0000 04000000 4c000000"  # (0000,0000) CommandGroupLength UL = 76
    "0000 0200 1c000000"
    + b"1.2.840.10008.5.1.4.1.2.2.1\x00".hex()  # (0000,0002) AffectedSOPClassUID: Study Root FIND
    + "0000 0001 02000000 2000"  # (0000,0100) CommandField = 0x0020 C-FIND-RQ
    "0000 1001 02000000 0700"  # (0000,0110) MessageID = 7
    "0000 0007 02000000 0000"  # (0000,0700) Priority = 0 (medium)
    "0000 0008 02000000 0000"  # (0000,0800) CommandDataSetType = 0x0000: an identifier follows
)
C_CANCEL_RQ_7 = bytes.fromhex(
    "0000 0000 04000000 1e000000"  # (0000,0000) CommandGroupLength UL = 30
    "0000 0001 02000000 ff0f"  # (0000,0100) CommandField = 0x0FFF C-CANCEL-RQ
    "0000 2001 02000000 0700"  # (0000,0120) MessageIDBeingRespondedTo = 7: the request cancelled
    "0000 0008 02000000 0101"  # (0000,0800) CommandDataSetType = 0x0101: no data set
)


def test_c_find_rq_golden_bytes() -> None:
    assert encode_c_find_rq(7, STUDY_ROOT_FIND) == C_FIND_RQ_7


def test_c_cancel_rq_golden_bytes() -> None:
    assert encode_c_cancel_rq(7) == C_CANCEL_RQ_7


def _implicit_bytes(ds: Dataset) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, True
    write_dataset(buffer, ds)
    return buffer.getvalue()


def test_c_find_rq_matches_pydicom_and_pynetdicom() -> None:
    ds = Dataset()
    ds.CommandGroupLength = 76
    ds.AffectedSOPClassUID = STUDY_ROOT_FIND
    ds.CommandField = 0x0020
    ds.MessageID = 7
    ds.Priority = 0
    ds.CommandDataSetType = 0x0000
    assert _implicit_bytes(ds) == C_FIND_RQ_7

    primitive = C_FIND()
    primitive.MessageID = 7
    primitive.AffectedSOPClassUID = STUDY_ROOT_FIND
    primitive.Priority = 0
    primitive.Identifier = BytesIO(encode_identifier([(0x00080052, "CS", "STUDY")], IMPLICIT_VR_LE))
    message = PynetdicomFind()
    message.primitive_to_message(primitive)
    theirs = pynetdicom_encode(message.command_set, True, True)
    assert theirs is not None
    # pynetdicom says "data set follows" with 0x0001, we with 0x0000: both mean "not 0x0101".
    assert theirs[:-2] == C_FIND_RQ_7[:-2] and theirs[-2:] == b"\x01\x00"


def test_c_cancel_rq_matches_pynetdicom() -> None:
    primitive = C_CANCEL()
    primitive.MessageIDBeingRespondedTo = 7
    message = PynetdicomCancel()
    message.primitive_to_message(primitive)
    assert pynetdicom_encode(message.command_set, True, True) == C_CANCEL_RQ_7


@pytest.mark.parametrize(
    ("name", "keyword"),
    [
        ("PATIENT_ROOT_FIND", "PatientRootQueryRetrieveInformationModelFind"),
        ("PATIENT_ROOT_MOVE", "PatientRootQueryRetrieveInformationModelMove"),
        ("PATIENT_ROOT_GET", "PatientRootQueryRetrieveInformationModelGet"),
        ("STUDY_ROOT_FIND", "StudyRootQueryRetrieveInformationModelFind"),
        ("STUDY_ROOT_MOVE", "StudyRootQueryRetrieveInformationModelMove"),
        ("STUDY_ROOT_GET", "StudyRootQueryRetrieveInformationModelGet"),
        ("MODALITY_WORKLIST_FIND", "ModalityWorklistInformationModelFind"),
        ("CT_IMAGE_STORAGE", "CTImageStorage"),
        ("MR_IMAGE_STORAGE", "MRImageStorage"),
        ("CR_IMAGE_STORAGE", "ComputedRadiographyImageStorage"),
        ("SECONDARY_CAPTURE_IMAGE_STORAGE", "SecondaryCaptureImageStorage"),
        ("EXPLICIT_VR_BE", "ExplicitVRBigEndian"),
        ("DEFLATED_EXPLICIT_VR_LE", "DeflatedExplicitVRLittleEndian"),
    ],
)
def test_uids_are_the_ones_pydicom_knows(name: str, keyword: str) -> None:
    assert UID(getattr(constants, name)).keyword == keyword


@pytest.mark.parametrize(
    ("status", "category", "words"),
    [
        (0x0000, "success", "success (0x0000)"),
        (0xFF00, "pending", "pending (0xff00)"),
        (0xFF01, "pending", "pending (optional keys not supported) (0xff01)"),
        (0xFE00, "cancel", "cancel (0xfe00)"),
        (0xA700, "failure", "refused: out of resources (0xa700)"),
        (0xA900, "failure", "failed: identifier does not match SOP class (0xa900)"),
        (0xC000, "failure", "failed: unable to process (0xc000)"),
        (0xC3FF, "failure", "failed: unable to process (0xc3ff)"),
        (0x0122, "failure", "failed: SOP class not supported (0x0122)"),
        (0x0124, "failure", "refused: not authorized (0x0124)"),
        (0x0110, "failure", "failed: processing failure (0x0110)"),
        (0xB000, "warning", "warning: one or more failures or warnings (0xb000)"),
        (0xB123, "warning", "warning (0xb123)"),
        (0x0001, "warning", "warning (0x0001)"),
        (0x0107, "warning", "warning: attribute list error (0x0107)"),
        (0xD000, "failure", "failure (0xd000)"),
    ],
)
def test_status_categories_and_words(status: int, category: str, words: str) -> None:
    assert status_category(status) == category
    assert status_words(status) == words
    assert is_pending(status) == (category == "pending")


# A scripted peer behind a real PduTransport

STUDY_UID = 0x0020000D
PATIENT_ID = 0x00100020
STUDY_QUERY = encode_identifier([(0x00080052, "CS", "STUDY"), (STUDY_UID, "UI", "")], IMPLICIT_VR_LE)


@dataclass
class Message:
    context_id: int
    command: CommandSet
    data_set: bytes | None


def _pdus(data: bytes) -> Iterator[tuple[int, bytes]]:
    pos = 0
    while pos < len(data):
        pdu_type, _, length = struct.unpack_from(">BBL", data, pos)
        yield pdu_type, data[pos + 6 : pos + 6 + length]
        pos += 6 + length


def find_rsp(
    message_id: int, status: int, identifier: bytes | None = None, context_id: int = 1
) -> list[bytes]:
    """A C-FIND-RSP as P-DATA-TF PDUs: the command, then the identifier if any."""
    command = encode_command_set(
        {
            0x00000002: STUDY_ROOT_FIND.encode() + b"\x00",
            0x00000100: struct.pack("<H", C_FIND_RSP),
            0x00000120: struct.pack("<H", message_id),
            0x00000800: struct.pack("<H", 0x0101 if identifier is None else 0x0000),
            0x00000900: struct.pack("<H", status),
        }
    )
    pdus = [encode_p_data([PresentationDataValue(context_id, True, True, command)])]
    if identifier is not None:
        pdus.append(encode_p_data([PresentationDataValue(context_id, False, True, identifier)]))
    return pdus


def match(n: int) -> bytes:
    return encode_identifier([(PATIENT_ID, "LO", f"P{n}"), (STUDY_UID, "UI", f"1.2.3.{n}")], IMPLICIT_VR_LE)


Responder = Callable[["Peer", Message], None]


class Peer(RecordingTransport):
    """The far end: parses what pacsaudit writes into DIMSE messages and lets `respond` answer."""

    def __init__(self, respond: Responder) -> None:
        super().__init__()
        self.respond = respond
        self.protocol: PduTransport | None = None
        self.received: list[Message] = []
        self.raw: list[bytes] = []
        self.queue: list[bytes] = []
        self.cancelled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        data = bytes(data)
        self.raw.append(data)
        command = bytearray()
        payload = bytearray()
        context_id = 0
        for pdu_type, body in _pdus(data):
            if pdu_type != 0x04:
                return  # release / abort: nothing to answer
            for pdv in decode_p_data(body):
                context_id = pdv.context_id
                (command if pdv.is_command else payload).extend(pdv.data)
        message = Message(context_id, decode_command_set(bytes(command)), bytes(payload) or None)
        self.received.append(message)
        if message.command.command_field == C_CANCEL_RQ:
            self.cancelled = True
        self.respond(self, message)

    def send(self, *pdus: bytes) -> None:
        """Queue PDUs; each reaches pacsaudit in its own event-loop iteration."""
        self.queue.extend(pdus)
        asyncio.get_running_loop().call_soon(self._deliver)

    def _deliver(self) -> None:
        if self.queue and not self.closing and self.protocol is not None:
            self.protocol.data_received(self.queue.pop(0))
            asyncio.get_running_loop().call_soon(self._deliver)


def _association(peer: Peer, *, accepted: dict[int, tuple[int, str | None]] | None = None) -> Association:
    transport = PduTransport(PduLimits(), read_timeout=0.5)
    transport.connection_made(peer)
    peer.protocol = transport
    request = AssociateRequest(
        called_ae="ANY-SCP",
        calling_ae="PACSAUDIT",
        contexts=(
            PresentationContext(1, STUDY_ROOT_FIND, (IMPLICIT_VR_LE, EXPLICIT_VR_LE)),
            PresentationContext(3, VERIFICATION, (IMPLICIT_VR_LE,)),
        ),
        max_pdu_length=16384,
        implementation_class_uid=constants.IMPLEMENTATION_CLASS_UID,
    )
    contexts: dict[int, tuple[int, str | None]] = (
        accepted if accepted is not None else {1: (0, IMPLICIT_VR_LE), 3: (0, IMPLICIT_VR_LE)}
    )
    accept = AssociateAccept(contexts=contexts, max_pdu_length=16384)
    return Association(transport, request, accept)


def streaming(matches: int, *, honours_cancel: bool = True, final: int = STATUS_SUCCESS) -> Responder:
    """A server that streams `matches` answers, checking for C-CANCEL-RQ before each, like DCMTK's."""

    def respond(peer: Peer, message: Message) -> None:
        if message.command.command_field != C_FIND_RQ:
            return
        message_id = message.command.message_id or 0

        def step(n: int) -> None:
            if honours_cancel and peer.cancelled:
                peer.send(*find_rsp(message_id, STATUS_CANCEL))
            elif n < matches:
                peer.send(*find_rsp(message_id, STATUS_PENDING, match(n)))
                asyncio.get_running_loop().call_soon(step, n + 1)
            else:
                peer.send(*find_rsp(message_id, final))

        step(0)

    return respond


async def _collect(
    assoc: Association, max_responses: int, identifier: bytes = STUDY_QUERY
) -> list[FindResponse]:
    return [r async for r in assoc.find(STUDY_ROOT_FIND, identifier, max_responses=max_responses)]


def _find(responder: Responder, max_responses: int = 100) -> tuple[Peer, list[FindResponse]]:
    async def go() -> tuple[Peer, list[FindResponse]]:
        peer = Peer(responder)
        return peer, await _collect(_association(peer), max_responses)

    return asyncio.run(go())


# find: what goes out


def test_request_goes_out_as_command_then_identifier_on_the_find_context() -> None:
    peer, _ = _find(streaming(0))
    (message,) = peer.received
    assert message.context_id == 1
    assert message.data_set == STUDY_QUERY
    assert message.command.message_id == 1  # a fresh association's first message
    # Command and identifier travel in separate PDVs, each marked last, command first.
    (pdus,) = peer.raw
    (command_pdv,), (data_pdv,) = (decode_p_data(body) for _, body in _pdus(pdus))
    assert (command_pdv.is_command, command_pdv.is_last) == (True, True)
    assert (data_pdv.is_command, data_pdv.is_last) == (False, True)
    assert command_pdv.data == encode_c_find_rq(1, STUDY_ROOT_FIND)


# find: what comes back


def test_all_matches_then_success() -> None:
    peer, responses = _find(streaming(3))
    assert [r.status for r in responses] == [STATUS_PENDING] * 3 + [STATUS_SUCCESS]
    assert [
        decode_identifier(r.identifier or b"", IMPLICIT_VR_LE, frozenset({PATIENT_ID})) for r in responses[:3]
    ] == [
        {PATIENT_ID: "P0"},
        {PATIENT_ID: "P1"},
        {PATIENT_ID: "P2"},
    ]
    assert responses[-1] == FindResponse(STATUS_SUCCESS, None, 0)
    assert len(peer.received) == 1  # no C-CANCEL-RQ for a complete answer


def test_no_match_is_just_the_final_status() -> None:
    _, responses = _find(streaming(0))
    assert responses == [FindResponse(STATUS_SUCCESS, None, 0)]


@pytest.mark.parametrize("status", [0xA700, 0xA900, 0xC001, 0x0122, 0x0124])
def test_failure_status_ends_the_find(status: int) -> None:
    _, responses = _find(streaming(0, final=status))
    assert responses == [FindResponse(status, None, 0)]


def test_exactly_max_responses_is_complete_without_cancel() -> None:
    """The cancel goes out only once an answer beyond the budget arrives: exactly N is not cut short."""
    peer, responses = _find(streaming(3), max_responses=3)
    assert [r.status for r in responses][-1] == STATUS_SUCCESS
    assert responses[-1].discarded == 0
    assert [m.command.command_field for m in peer.received] == [C_FIND_RQ]


def test_budget_reached_sends_cancel_and_ends_on_cancel_status() -> None:
    peer, responses = _find(streaming(50), max_responses=2)
    # Given a budget of 2, when the third match arrives, then C-CANCEL-RQ goes out for message 1
    assert [m.command.command_field for m in peer.received] == [C_FIND_RQ, C_CANCEL_RQ]
    cancel = peer.received[1]
    assert (cancel.context_id, cancel.command.message_id_responded, cancel.data_set) == (1, 1, None)
    assert peer.raw[1] == encode_p_data([PresentationDataValue(1, True, True, encode_c_cancel_rq(1))])
    # and only the budget is yielded; the rest is dropped until the peer's final Cancel status.
    assert [r.status for r in responses] == [STATUS_PENDING, STATUS_PENDING, STATUS_CANCEL]
    assert responses[-1].discarded >= 1


def test_peer_that_finishes_before_seeing_the_cancel_ends_on_success() -> None:
    """Orthanc with a few matches: everything is sent before the C-CANCEL-RQ is read."""
    peer, responses = _find(streaming(3, honours_cancel=False), max_responses=1)
    assert [r.status for r in responses] == [STATUS_PENDING, STATUS_SUCCESS]
    assert responses[-1].discarded == 2
    assert [m.command.command_field for m in peer.received] == [C_FIND_RQ, C_CANCEL_RQ]


def test_max_responses_zero_only_learns_the_status() -> None:
    _, responses = _find(streaming(5), max_responses=0)
    assert [r.status for r in responses] == [STATUS_CANCEL]
    assert responses[0].discarded >= 1  # matches already on their way when the cancel went out


def test_peer_deaf_to_cancel_is_cut_off_after_the_bound() -> None:
    peer = Peer(streaming(10 * MAX_READS_AFTER_CANCEL, honours_cancel=False))

    async def go() -> list[FindResponse]:
        return await _collect(_association(peer), 1)

    with pytest.raises(DicomProtocolError, match="after C-CANCEL-RQ"):
        asyncio.run(go())
    cancels = [m for m in peer.received if m.command.command_field == C_CANCEL_RQ]
    assert len(cancels) == 1  # asked once, politely


def test_pending_warning_counts_as_a_match() -> None:
    def respond(peer: Peer, message: Message) -> None:
        if message.command.command_field == C_FIND_RQ:
            peer.send(*find_rsp(1, STATUS_PENDING_WARNING, match(0)), *find_rsp(1, STATUS_SUCCESS))

    _, responses = _find(respond)
    assert [r.status for r in responses] == [STATUS_PENDING_WARNING, STATUS_SUCCESS]
    assert responses[0].identifier == match(0)


def test_pending_without_identifier_yields_empty_bytes_and_final_data_set_is_dropped() -> None:
    def respond(peer: Peer, message: Message) -> None:
        if message.command.command_field == C_FIND_RQ:
            peer.send(*find_rsp(1, STATUS_PENDING), *find_rsp(1, 0xC000, match(9)))

    _, responses = _find(respond)
    assert responses == [FindResponse(STATUS_PENDING, b""), FindResponse(0xC000, None, 0)]


def test_caller_cancel() -> None:
    async def go() -> tuple[Peer, list[FindResponse], list[bool]]:
        peer = Peer(streaming(20))
        assoc = _association(peer)
        seen: list[FindResponse] = []
        calls: list[bool] = []
        async for response in assoc.find(STUDY_ROOT_FIND, STUDY_QUERY, max_responses=100):
            seen.append(response)
            if len(seen) == 2:
                calls += [assoc.cancel(), assoc.cancel()]
        calls.append(assoc.cancel())  # no find running any more
        return peer, seen, calls

    peer, seen, calls = asyncio.run(go())
    assert calls == [True, False, False]
    assert [r.status for r in seen][:2] == [STATUS_PENDING, STATUS_PENDING]
    assert seen[-1].status == STATUS_CANCEL
    assert len(seen) == 3  # nothing yielded after the caller's cancel
    assert [m.command.command_field for m in peer.received] == [C_FIND_RQ, C_CANCEL_RQ]


def test_cancel_from_another_task_while_the_find_waits() -> None:
    def respond(peer: Peer, message: Message) -> None:
        if message.command.command_field == C_FIND_RQ:
            peer.send(*find_rsp(1, STATUS_PENDING, match(0)))  # then silence until cancelled
        elif message.command.command_field == C_CANCEL_RQ:
            peer.send(*find_rsp(1, STATUS_CANCEL))

    async def go() -> list[FindResponse]:
        peer = Peer(respond)
        assoc = _association(peer)
        asyncio.get_running_loop().call_later(0.05, assoc.cancel)
        return await _collect(assoc, 100)

    responses = asyncio.run(go())
    assert [r.status for r in responses] == [STATUS_PENDING, STATUS_CANCEL]


def test_stopping_early_sends_cancel() -> None:
    async def go() -> Peer:
        peer = Peer(streaming(20))
        assoc = _association(peer)
        async with aclosing(assoc.find(STUDY_ROOT_FIND, STUDY_QUERY, max_responses=100)) as responses:
            async for _ in responses:
                break
        return peer

    peer = asyncio.run(go())
    assert [m.command.command_field for m in peer.received] == [C_FIND_RQ, C_CANCEL_RQ]


def test_two_finds_in_a_row_use_new_message_ids() -> None:
    async def go() -> tuple[Peer, list[FindResponse], list[FindResponse]]:
        peer = Peer(streaming(2))
        assoc = _association(peer)
        return peer, await _collect(assoc, 10), await _collect(assoc, 10)

    peer, first, second = asyncio.run(go())
    assert [r.status for r in first] == [r.status for r in second] == [STATUS_PENDING] * 2 + [STATUS_SUCCESS]
    assert [m.command.message_id for m in peer.received] == [1, 2]


def test_one_find_at_a_time() -> None:
    async def go() -> None:
        assoc = _association(Peer(streaming(3)))
        first = assoc.find(STUDY_ROOT_FIND, STUDY_QUERY, max_responses=10)
        await anext(first)
        with pytest.raises(RuntimeError, match="already running"):
            await anext(assoc.find(STUDY_ROOT_FIND, STUDY_QUERY, max_responses=10))
        await first.aclose()

    asyncio.run(go())


# find: refusals and hostile peers


def test_context_not_accepted_sends_nothing() -> None:
    async def go() -> Peer:
        peer = Peer(streaming(1))
        assoc = _association(peer, accepted={1: (3, None), 3: (0, IMPLICIT_VR_LE)})
        with pytest.raises(ContextNotAcceptedError, match=STUDY_ROOT_FIND):
            await _collect(assoc, 10)
        return peer

    assert asyncio.run(go()).raw == []


def test_negative_budget_is_refused() -> None:
    async def go() -> None:
        with pytest.raises(ValueError, match="max_responses"):
            await _collect(_association(Peer(streaming(1))), -1)

    asyncio.run(go())


def test_transfer_syntax_of_the_find_context() -> None:
    async def go() -> tuple[str | None, str | None, str | None]:
        assoc = _association(Peer(streaming(0)), accepted={1: (0, EXPLICIT_VR_LE), 3: (0, IMPLICIT_VR_LE)})
        return (
            assoc.transfer_syntax_for(STUDY_ROOT_FIND),
            assoc.transfer_syntax_for(VERIFICATION),
            assoc.transfer_syntax_for(constants.PATIENT_ROOT_FIND),
        )

    assert asyncio.run(go()) == (EXPLICIT_VR_LE, IMPLICIT_VR_LE, None)


def test_abort_mid_find_raises_and_sends_no_cancel() -> None:
    """Orthanc's answer to a stranger's C-FIND when DicomAlwaysAllowFind is off."""

    def respond(peer: Peer, message: Message) -> None:
        if message.command.command_field == C_FIND_RQ:
            peer.send(*find_rsp(1, STATUS_PENDING, match(0)), encode_abort(0, 0))

    peer = Peer(respond)

    async def go() -> list[FindResponse]:
        return await _collect(_association(peer), 10)

    with pytest.raises(AssociationAbortedError) as caught:
        asyncio.run(go())
    assert caught.value.abort is not None and (caught.value.abort.source, caught.value.abort.reason) == (0, 0)
    assert [m.command.command_field for m in peer.received] == [C_FIND_RQ]


def _respond_with(*pdus: bytes) -> Responder:
    def respond(peer: Peer, message: Message) -> None:
        if message.command.command_field == C_FIND_RQ:
            peer.send(*pdus)

    return respond


def _rsp_command(**fields: int) -> bytes:
    names = {"command_field": 0x0100, "responded": 0x0120, "data_set_type": 0x0800, "status": 0x0900}
    command = encode_command_set({names[k]: struct.pack("<H", v) for k, v in fields.items()})
    return encode_p_data([PresentationDataValue(1, True, True, command)])


@pytest.mark.parametrize(
    ("pdus", "words"),
    [
        (find_rsp(99, STATUS_SUCCESS), "another message ID"),
        ([_rsp_command(command_field=C_FIND_RSP, data_set_type=0x0101, status=0)], "another message ID"),
        ([_rsp_command(command_field=C_ECHO_RSP, responded=1, data_set_type=0x0101, status=0)], "0x8030"),
        ([_rsp_command(command_field=C_FIND_RSP, responded=1, data_set_type=0x0101)], "without a status"),
        # a data set PDV before its command
        ([encode_p_data([PresentationDataValue(1, False, True, match(0))])], "before the command"),
    ],
)
def test_hostile_responses_are_protocol_errors(pdus: list[bytes], words: str) -> None:
    async def go() -> list[FindResponse]:
        return await _collect(_association(Peer(_respond_with(*pdus))), 10)

    with pytest.raises(DicomProtocolError, match=words):
        asyncio.run(go())


def test_silence_is_the_transport_timeout() -> None:
    async def go() -> list[FindResponse]:
        return await _collect(_association(Peer(lambda peer, message: None)), 10)

    with pytest.raises(TimeoutError):
        asyncio.run(go())


def test_large_identifier_is_fragmented_to_the_peer_maximum() -> None:
    big = encode_identifier([(PATIENT_ID, "LO", "X" * 60_000)], IMPLICIT_VR_LE)
    peer = Peer(streaming(0))

    async def go() -> list[FindResponse]:
        return await _collect(_association(peer), 1, identifier=big)

    asyncio.run(go())
    assert peer.received[0].data_set == big
    # Maximum Length Received bounds the PDU's variable field (PS3.8 D.1), the 6-byte header aside.
    bodies = [body for _, body in _pdus(peer.raw[0])]
    assert len(bodies) == 1 + 4 and max(len(body) for body in bodies) == 16384
