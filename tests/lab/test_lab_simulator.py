"""The simulated PACS answers pynetdicom's SCU, and raw PDUs, exactly as its policy says."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
import time
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from lab_helpers import (
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
    JPEG_BASELINE,
    STUDY_ROOT_FIND,
    VERIFICATION,
    Outcome,
    associate,
    associate_rq,
    close,
    connect,
    echo_rq,
    read_pdu,
    read_to_eof,
    run,
    split_pdus,
)
from pydicom.dataset import Dataset
from pydicom.filereader import dcmread, read_dataset
from pynetdicom import AE
from pynetdicom.dimse_messages import C_ECHO_RSP, C_FIND_RQ, C_FIND_RSP
from pynetdicom.dimse_primitives import C_ECHO, C_FIND
from pynetdicom.dsutils import encode
from pynetdicom.pdu import A_ASSOCIATE_AC, P_DATA_TF

import pacsaudit.lab.simulator as simulator
from pacsaudit.lab.simulator import (
    PacsPolicy,
    SimStudy,
    SimulatedPacs,
    encode_accept,
    encode_echo_response,
    encode_find_response,
    start_simulated_pacs,
)
from scanning import missing_software

# Golden PDUs, PS3.8 9.3.
RJ_CALLED_AE = bytes.fromhex("03 00 00000004 00 01 01 07")  # RJ, len 4, reserved, permanent, user, called AE
RJ_CALLING_AE = bytes.fromhex("03 00 00000004 00 01 01 03")  # ... calling AE not recognized
RJ_BUSY = bytes.fromhex("03 00 00000004 00 02 03 02")  # transient, provider (presentation), local limit
ABORT_BY_USER = bytes.fromhex("07 00 00000004 00 00 00 00")  # A-ABORT, reserved x2, source 0, reason 0
ABORT_UNRECOGNIZED_PDU = bytes.fromhex("07 00 00000004 00 00 02 01")  # source 2 (provider), reason 1
ABORT_UNEXPECTED_PDU = bytes.fromhex("07 00 00000004 00 00 02 02")  # reason 2
ABORT_INVALID_PARAMETER = bytes.fromhex("07 00 00000004 00 00 02 06")  # reason 6
RELEASE_RQ = bytes.fromhex("05 00 00000004 00000000")
RELEASE_RP = bytes.fromhex("06 00 00000004 00000000")


async def _start(policy: PacsPolicy, **kwargs: float) -> SimulatedPacs:
    """A simulated PACS that waits only 0.2 s for the peer to close after its last PDU."""
    kwargs.setdefault("artim_timeout", 0.2)
    return await start_simulated_pacs(policy, **kwargs)


async def _associate_in_thread(pacs: SimulatedPacs, *args: Any, **kwargs: Any) -> Outcome:
    """pynetdicom's SCU blocks, so it runs in a thread while the server runs on this loop."""
    return await asyncio.to_thread(associate, pacs.host, pacs.port, *args, **kwargs)


# -- through pynetdicom's SCU -----------------------------------------------------------------


def test_open_policy_accepts_strangers_echoes_and_describes_itself() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy()) as pacs:
            outcome = await _associate_in_thread(
                pacs,
                "PAXQZRTWKLMB",
                "PAJHGFDSAPOI",
                [(VERIFICATION, None), (STUDY_ROOT_FIND, None)],
                message_id=4711,
            )
            assert outcome.established and outcome.released
            assert outcome.echo_status == 0x0000
            assert outcome.accepted == [(VERIFICATION, IMPLICIT_VR_LE)]
            assert outcome.refused == [(STUDY_ROOT_FIND, 3)]  # abstract syntax not supported
            assert outcome.implementation_class_uid == "1.2.276.0.7230010.3.0.3.6.7"
            assert outcome.implementation_version_name == "OFFIS_DCMTK_367"
            assert outcome.max_pdu == 16384
            assert pacs.associations == 1
            assert pacs.echoes == 1
            assert list(pacs.titles_seen) == [("PAXQZRTWKLMB", "PAJHGFDSAPOI")]

    run(body)


def test_identity_comes_from_the_policy_and_version_name_can_be_absent() -> None:
    policy = PacsPolicy(
        implementation_class_uid="1.2.3.4.5", implementation_version_name=None, max_pdu_length=0
    )

    async def body() -> None:
        async with await _start(policy) as pacs:
            outcome = await _associate_in_thread(pacs)
            assert outcome.established
            assert outcome.implementation_class_uid == "1.2.3.4.5"
            assert outcome.implementation_version_name is None
            assert outcome.max_pdu == 0

            reader, writer = await connect(pacs.host, pacs.port)
            writer.write(associate_rq())
            ac = await read_pdu(reader)
            await close(writer)
        user_information = {item.item_type for item in A_ASSOCIATE_AC_decoded(ac).user_information.user_data}
        assert user_information == {0x51, 0x52}  # max length and class UID; no 0x55 version name

    run(body)


def A_ASSOCIATE_AC_decoded(pdu: bytes) -> A_ASSOCIATE_AC:
    assert pdu[0] == 0x02, pdu[:10].hex()
    ac = A_ASSOCIATE_AC()
    ac.decode(pdu)
    return ac


def test_called_ae_policy() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy(called_aets=frozenset({"ARCHIVE"}))) as pacs:
            good = await _associate_in_thread(pacs, "ARCHIVE", "ANYONE")
            bad = await _associate_in_thread(pacs, "ARCHIVE2", "ANYONE")
        assert good.established and good.echo_status == 0
        assert bad.rejected and bad.reject == (1, 1, 7)

    run(body)


def test_calling_ae_policy_tells_the_truth_by_default() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy(calling_aets=frozenset({"MODALITY1"}))) as pacs:
            good = await _associate_in_thread(pacs, "WHATEVER", "MODALITY1")
            bad = await _associate_in_thread(pacs, "WHATEVER", "STRANGER")
        assert good.established
        assert bad.rejected and bad.reject == (1, 1, 3)

    run(body)


def test_lying_reason_blames_the_called_ae_for_a_bad_calling_ae() -> None:
    policy = PacsPolicy(
        called_aets=frozenset({"ARCHIVE"}), calling_aets=frozenset({"FINDSCU"}), lying_reason=True
    )

    async def body() -> None:
        async with await _start(policy) as pacs:
            bad_calling = await _associate_in_thread(pacs, "ARCHIVE", "STRANGER")
            bad_called = await _associate_in_thread(pacs, "NOTHERE", "FINDSCU")
            both_good = await _associate_in_thread(pacs, "ARCHIVE", "FINDSCU")
        assert bad_calling.reject == (1, 1, 7)
        assert bad_called.reject == (1, 1, 7)
        assert both_good.established

    run(body)


def test_called_ae_is_checked_before_calling_ae() -> None:
    policy = PacsPolicy(called_aets=frozenset({"ARCHIVE"}), calling_aets=frozenset({"FINDSCU"}))

    async def body() -> None:
        async with await _start(policy) as pacs:
            both_bad = await _associate_in_thread(pacs, "NOTHERE", "STRANGER")
            calling_bad = await _associate_in_thread(pacs, "ARCHIVE", "STRANGER")
        assert both_bad.reject == (1, 1, 7)
        assert calling_bad.reject == (1, 1, 3)

    run(body)


def test_reject_all_uses_the_given_fields() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy(reject_all=(2, 1, 1))) as pacs:
            outcome = await _associate_in_thread(pacs)
            assert outcome.rejected and outcome.reject == (2, 1, 1)
            assert pacs.associations == 1

    run(body)


def test_busy_n_times_then_accepts() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy(busy_times=2)) as pacs:
            first = await _associate_in_thread(pacs)
            second = await _associate_in_thread(pacs)
            third = await _associate_in_thread(pacs)
            assert pacs.associations == 3
        assert first.reject == (2, 3, 2)
        assert second.reject == (2, 3, 2)
        assert third.established and third.echo_status == 0

    run(body)


def test_abort_on_associate() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy(abort_on_associate=True)) as pacs:
            outcome = await _associate_in_thread(pacs)
            assert outcome.aborted and not outcome.established and not outcome.rejected

            reader, writer = await connect(pacs.host, pacs.port)
            writer.write(associate_rq())
            assert await read_to_eof(reader) == ABORT_BY_USER
            await close(writer)

    run(body)


def test_echo_status_comes_from_the_policy() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy(echo_status=0xC001)) as pacs:
            outcome = await _associate_in_thread(pacs)
        assert outcome.established and outcome.echo_status == 0xC001

    run(body)


@pytest.mark.parametrize(
    ("proposed", "accepted"),
    [
        ([EXPLICIT_VR_LE, IMPLICIT_VR_LE], IMPLICIT_VR_LE),  # implicit VR LE preferred, wherever proposed
        ([EXPLICIT_VR_LE], EXPLICIT_VR_LE),
    ],
)
def test_transfer_syntax_is_one_the_client_proposed(proposed: list[str], accepted: str) -> None:
    async def body() -> None:
        async with await _start(PacsPolicy()) as pacs:
            outcome = await _associate_in_thread(pacs, "A", "B", [(VERIFICATION, proposed)])
        assert outcome.accepted == [(VERIFICATION, accepted)]
        assert outcome.echo_status == 0

    run(body)


def test_unsupported_transfer_syntaxes_refuse_the_context_with_result_4() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy()) as pacs:
            reader, writer = await connect(pacs.host, pacs.port)
            writer.write(associate_rq(contexts=[(VERIFICATION, [JPEG_BASELINE])]))
            ac = A_ASSOCIATE_AC_decoded(await read_pdu(reader))
            await close(writer)
        (context,) = ac.presentation_context
        assert (context.context_id, context.result) == (1, 4)

    run(body)


# -- raw PDUs: the exact bytes ----------------------------------------------------------------


def test_reject_pdus_are_the_golden_bytes() -> None:
    async def body() -> None:
        policy = PacsPolicy(called_aets=frozenset({"ARCHIVE"}), calling_aets=frozenset({"FINDSCU"}))
        async with await _start(policy) as pacs, await _start(PacsPolicy(busy_times=1)) as busy:
            for server, request, expected in [
                (pacs, associate_rq("NOTHERE", "FINDSCU"), RJ_CALLED_AE),
                (pacs, associate_rq("ARCHIVE", "STRANGER"), RJ_CALLING_AE),
                (busy, associate_rq(), RJ_BUSY),
            ]:
                reader, writer = await connect(server.host, server.port)
                writer.write(request)
                assert await read_to_eof(reader) == expected  # the reject, then the server closes
                await close(writer)

    run(body)


def test_accept_echoes_titles_and_answers_echo_then_release() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy()) as pacs:
            reader, writer = await connect(pacs.host, pacs.port)
            writer.write(
                associate_rq(
                    "CALLED-X",
                    "CALLING-Y",
                    [(STUDY_ROOT_FIND, [IMPLICIT_VR_LE]), (VERIFICATION, [IMPLICIT_VR_LE])],
                )
            )
            ac = A_ASSOCIATE_AC_decoded(await read_pdu(reader))
            assert (ac.called_ae_title, ac.calling_ae_title) == ("CALLED-X", "CALLING-Y")
            assert ac.application_context_name == "1.2.840.10008.3.1.1.1"
            results = {cx.context_id: cx.result for cx in ac.presentation_context}
            assert results == {1: 3, 3: 0}

            for pdu in echo_rq(message_id=0x1234, context_id=3):
                writer.write(pdu)
            response = await read_pdu(reader)
            expected_command = encode_echo_response(0x1234, 0x0000)
            # P-DATA-TF, PDV length, context 3, command + last fragment, the command set
            assert response == (
                bytes.fromhex("04 00")
                + (len(expected_command) + 6).to_bytes(4, "big")
                + (len(expected_command) + 2).to_bytes(4, "big")
                + bytes([3, 0x03])
                + expected_command
            )

            writer.write(RELEASE_RQ)
            assert await read_to_eof(reader) == RELEASE_RP
            await close(writer)

    run(body)


def test_after_its_last_pdu_the_server_waits_for_the_peer_to_close_then_gives_up() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy(reject_all=(1, 1, 1)), artim_timeout=1.0) as pacs:
            reader, writer = await connect(pacs.host, pacs.port)
            writer.write(associate_rq())
            started = time.monotonic()
            assert await read_pdu(reader) == bytes.fromhex("03 00 00000004 00 01 01 01")
            with pytest.raises(TimeoutError):  # state 13: the requestor is the one to close
                async with asyncio.timeout(0.5):
                    await reader.read()
            async with asyncio.timeout(2):  # ...until the ARTIM timer runs out
                assert await read_to_eof(reader) == b""
            assert 0.9 <= time.monotonic() - started < 2
            await close(writer)

    run(body)


def test_echo_response_command_set_is_the_golden_bytes() -> None:
    # Group length 66; Affected SOP Class UID "1.2.840.10008.1.1\0"; Command Field 0x8030;
    # Message ID Being Responded To 7; Command Data Set Type 0x0101 (none); Status 0x0000.
    assert encode_echo_response(7, 0) == bytes.fromhex(
        "00000000 04000000 42000000"
        "00000200 12000000" + b"1.2.840.10008.1.1\x00".hex() + "00000001 02000000 3080"
        "00002001 02000000 0700"
        "00000008 02000000 0101"
        "00000009 02000000 0000"
    )


def test_echo_response_matches_pynetdicoms_own_encoding() -> None:
    primitive = C_ECHO()
    primitive.MessageIDBeingRespondedTo = 513
    primitive.AffectedSOPClassUID = VERIFICATION
    primitive.Status = 0xC001
    message = C_ECHO_RSP()
    message.primitive_to_message(primitive)
    (p_data,) = message.encode_msg(1, 0)
    ((context_id, fragment),) = p_data.presentation_data_value_list
    assert (context_id, fragment[0]) == (1, 0x03)
    assert fragment[1:] == encode_echo_response(513, 0xC001)


def test_command_split_over_two_pdus_and_reply_fragmented_to_the_peer_max_pdu() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy()) as pacs:
            reader, writer = await connect(pacs.host, pacs.port)
            writer.write(associate_rq(max_pdu=40))  # room for 34 command bytes per PDU
            A_ASSOCIATE_AC_decoded(await read_pdu(reader))
            pdus = echo_rq(message_id=9, max_pdu=40)
            assert len(pdus) > 1  # pynetdicom fragmented the request, too
            for pdu in pdus:
                writer.write(pdu)
                await asyncio.sleep(0.01)
            fragments = []
            while True:
                pdu = await read_pdu(reader)
                assert pdu[0] == 0x04 and len(pdu) - 6 <= 40
                fragments.append(pdu)
                if pdu[11] & 0x02:  # last fragment
                    break
            writer.write(RELEASE_RQ)
            assert await read_to_eof(reader) == RELEASE_RP
            await close(writer)
        assert [f[11] for f in fragments] == [0x01] * (len(fragments) - 1) + [0x03]
        assert b"".join(f[12:] for f in fragments) == encode_echo_response(9, 0)

    run(body)


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", ABORT_INVALID_PARAMETER),  # "T / " read as a 1.4 GB length
        (bytes.fromhex("0A 00 00000002 0000"), ABORT_UNRECOGNIZED_PDU),
        (echo_rq()[0], ABORT_UNEXPECTED_PDU),  # P-DATA before any association
        (RELEASE_RQ, ABORT_UNEXPECTED_PDU),
        (
            bytes.fromhex("01 00 00000010") + bytes(16),
            ABORT_INVALID_PARAMETER,
        ),  # RQ shorter than its fixed part
    ],
)
def test_garbage_and_out_of_order_pdus_get_an_abort(sent: bytes, expected: bytes) -> None:
    async def body() -> None:
        async with await _start(PacsPolicy()) as pacs:
            reader, writer = await connect(pacs.host, pacs.port)
            writer.write(sent)
            async with asyncio.timeout(2):
                assert await read_to_eof(reader) == expected
            await close(writer)
            assert pacs.associations == 0

    run(body)


def test_request_whose_items_overrun_is_aborted() -> None:
    request = bytearray(associate_rq())
    request[74 + 2 : 74 + 4] = (0xFFFF).to_bytes(2, "big")  # application context item claims 64 KiB

    async def body() -> None:
        async with await _start(PacsPolicy()) as pacs:
            reader, writer = await connect(pacs.host, pacs.port)
            writer.write(bytes(request))
            assert await read_to_eof(reader) == ABORT_INVALID_PARAMETER
            await close(writer)

    run(body)


def test_oversized_pdu_is_refused_from_its_header_alone() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy()) as pacs:
            reader, writer = await connect(pacs.host, pacs.port)
            writer.write(bytes.fromhex("01 00 00010001"))  # announces 64 KiB + 1 and sends nothing more
            async with asyncio.timeout(1):
                assert await read_to_eof(reader) == ABORT_INVALID_PARAMETER
            await close(writer)

    run(body)


def test_abort_from_the_client_ends_the_association_at_once() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy(), artim_timeout=10) as pacs:
            reader, writer = await connect(pacs.host, pacs.port)
            writer.write(associate_rq())
            await read_pdu(reader)
            writer.write(ABORT_BY_USER)
            async with asyncio.timeout(1):
                assert await read_to_eof(reader) == b""
            await close(writer)

    run(body)


def test_idle_peer_is_dropped_after_the_idle_timeout() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy(), idle_timeout=0.3) as pacs:
            reader, writer = await connect(pacs.host, pacs.port)
            writer.write(associate_rq()[:20])  # a partial request, then silence
            started = time.monotonic()
            async with asyncio.timeout(2):
                assert await read_to_eof(reader) == b""
            assert 0.25 <= time.monotonic() - started < 1.5
            await close(writer)

    run(body)


def test_close_drops_open_connections_promptly() -> None:
    async def body() -> None:
        pacs = await _start(PacsPolicy())
        reader, writer = await connect(pacs.host, pacs.port)
        writer.write(associate_rq())
        await read_pdu(reader)  # established, and idle
        started = time.monotonic()
        await pacs.close()
        assert time.monotonic() - started < 1
        async with asyncio.timeout(1):
            assert await read_to_eof(reader) == b""
        await close(writer)
        with pytest.raises(OSError):
            await connect(pacs.host, pacs.port)

    run(body)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "localhost", "::", "2001:db8::1"])
def test_refuses_to_listen_off_loopback(host: str) -> None:
    async def body() -> None:
        with pytest.raises(ValueError, match="loopback"):
            await start_simulated_pacs(PacsPolicy(), host)

    run(body)


def test_listens_on_any_loopback_address_and_ipv6_loopback() -> None:
    async def body() -> None:
        async with await start_simulated_pacs(PacsPolicy(), "127.77.1.9") as pacs:
            assert pacs.host == "127.77.1.9"
            assert (await asyncio.to_thread(associate, pacs.host, pacs.port)).established
        if not socket.has_ipv6:
            return
        try:
            pacs6 = await start_simulated_pacs(PacsPolicy(), "::1")
        except OSError:
            return  # no IPv6 loopback here
        async with pacs6:
            assert pacs6.host == "::1"
            assert (await asyncio.to_thread(associate, "::1", pacs6.port)).established

    run(body)


@pytest.mark.parametrize(
    "bad",
    [
        {"busy_times": -1},
        {"echo_status": 0x10000},
        {"reject_all": (3, 1, 1)},
        {"implementation_version_name": "SEVENTEEN_CHARS_X"},
        {"implementation_class_uid": "not a uid"},
    ],
)
def test_policy_rejects_impossible_values(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        PacsPolicy(**bad)  # type: ignore[arg-type]


def test_accepts_anyone() -> None:
    assert PacsPolicy(echo_status=0x0122, implementation_version_name=None).accepts_anyone
    assert not PacsPolicy(called_aets=frozenset({"X"})).accepts_anyone
    assert not PacsPolicy(busy_times=1).accepts_anyone


def test_encode_accept_refuses_what_is_not_a_request() -> None:
    assert encode_accept(associate_rq())[0] == 0x02
    with pytest.raises(ValueError):
        encode_accept(b"\x01\x00\x00\x00\x00\x02\x00\x01")
    with pytest.raises(ValueError):
        encode_accept(split_pdus(echo_rq()[0])[0])


# -- C-FIND ------------------------------------------------------------------------------------

STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
PENDING, SUCCESS, CANCEL = 0xFF00, 0x0000, 0xFE00

ARCHIVE = (
    SimStudy(
        "1.2.3.1", "P001", "20190101", ("CT",), 2, 5, "General Hospital", "123-45-6789\\OLD1", "19500101"
    ),
    SimStudy("1.2.3.2", "P002", "20200615", ("MR", "PR"), 3, 7),
    SimStudy("1.2.3.3", "P010", "20201231", ("CR",), 1, 1, "St. Elsewhere"),
    SimStudy("1.2.3.4", "X001", "", ("US",), 1, 3),  # undated: no date key matches it
)

STUDY_KEYS = {
    "StudyInstanceUID": "",
    "StudyDate": "",
    "PatientID": "",
    "OtherPatientIDs": "",
    "InstitutionName": "",
    "ModalitiesInStudy": "",
    "NumberOfStudyRelatedSeries": "",
    "NumberOfStudyRelatedInstances": "",
}


def _query(level: str = "STUDY", **keys: str) -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    return query


@dataclass
class FindOutcome:
    """What pynetdicom's SCU saw of one C-FIND."""

    accepted: list[tuple[str, str]] = field(default_factory=list)
    matches: list[Dataset] = field(default_factory=list)
    pending_statuses: list[int] = field(default_factory=list)
    final: int | None = None
    aborted: bool = False


def _find(
    host: str,
    port: int,
    query: Dataset,
    *,
    transfer_syntaxes: list[str] | None = None,
    cancel_after: int | None = None,
    extra_contexts: tuple[str, ...] = (),
) -> FindOutcome:
    """An association with pynetdicom's SCU, one C-FIND over it (C-CANCEL after `cancel_after` matches)."""
    ae = AE(ae_title="FINDSCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 5
    ae.add_requested_context(STUDY_ROOT_FIND, transfer_syntaxes)
    for abstract_syntax in extra_contexts:
        ae.add_requested_context(abstract_syntax)
    assoc = ae.associate(host, port, ae_title="ARCHIVE")
    outcome = FindOutcome()
    try:
        assert assoc.is_established
        outcome.accepted = [(cx.abstract_syntax, cx.transfer_syntax[0]) for cx in assoc.accepted_contexts]
        if not any(cx.abstract_syntax == STUDY_ROOT_FIND for cx in assoc.accepted_contexts):
            return outcome
        for status, identifier in assoc.send_c_find(query, STUDY_ROOT_FIND, msg_id=11):
            if "Status" not in status:
                outcome.aborted = True
                break
            if status.Status in (PENDING, 0xFF01):
                outcome.pending_statuses.append(status.Status)
                outcome.matches.append(identifier)
                if cancel_after is not None and len(outcome.matches) == cancel_after:
                    context_id = next(
                        cx.context_id
                        for cx in assoc.accepted_contexts
                        if cx.abstract_syntax == STUDY_ROOT_FIND
                    )
                    assoc.send_c_cancel(11, context_id)
            else:
                outcome.final = status.Status
        if assoc.is_established:
            assoc.release()
    finally:
        if assoc.is_established:
            assoc.abort()
        ae.shutdown()
    return outcome


async def _find_in_thread(pacs: SimulatedPacs, query: Dataset, **kwargs: Any) -> FindOutcome:
    return await asyncio.to_thread(_find, pacs.host, pacs.port, query, **kwargs)


def _uids(outcome: FindOutcome) -> list[str]:
    return [str(match.StudyInstanceUID) for match in outcome.matches]


def test_find_context_is_accepted_only_when_the_policy_answers_find() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy()) as plain, await _start(PacsPolicy(studies=())) as archive:
            refused = await _find_in_thread(plain, _query(), extra_contexts=(VERIFICATION,))
            accepted = await _find_in_thread(
                archive, _query(), extra_contexts=(VERIFICATION, STUDY_ROOT_MOVE)
            )
        assert refused.accepted == [(VERIFICATION, IMPLICIT_VR_LE)]
        assert accepted.accepted == [(STUDY_ROOT_FIND, IMPLICIT_VR_LE), (VERIFICATION, IMPLICIT_VR_LE)]
        assert (accepted.matches, accepted.final) == ([], SUCCESS), "an empty archive answers: nothing"

        move_only = PacsPolicy(studies=ARCHIVE, accept_contexts=frozenset({VERIFICATION, STUDY_ROOT_MOVE}))
        async with await _start(move_only) as pacs:
            outcome = await _find_in_thread(pacs, _query(), extra_contexts=(STUDY_ROOT_MOVE,))
        assert outcome.accepted == [(STUDY_ROOT_MOVE, IMPLICIT_VR_LE)]

    run(body)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({}, ["1.2.3.1", "1.2.3.2", "1.2.3.3", "1.2.3.4"]),  # universal
        ({"StudyDate": "20200615"}, ["1.2.3.2"]),
        ({"StudyDate": "20200101-20201231"}, ["1.2.3.2", "1.2.3.3"]),
        ({"StudyDate": "-20200615"}, ["1.2.3.1", "1.2.3.2"]),
        ({"StudyDate": "20200616-"}, ["1.2.3.3"]),
        ({"StudyDate": "19000101-29991231"}, ["1.2.3.1", "1.2.3.2", "1.2.3.3"]),  # never the undated one
        ({"PatientID": "P002"}, ["1.2.3.2"]),
        ({"PatientID": "P00*"}, ["1.2.3.1", "1.2.3.2"]),
        ({"PatientID": "P0*"}, ["1.2.3.1", "1.2.3.2", "1.2.3.3"]),
        ({"PatientID": "*"}, ["1.2.3.1", "1.2.3.2", "1.2.3.3", "1.2.3.4"]),
        ({"PatientID": "p002"}, []),  # case-sensitive, as LO matching is
        ({"StudyInstanceUID": "1.2.3.3"}, ["1.2.3.3"]),
        ({"PatientID": "P0*", "StudyDate": "-20200101"}, ["1.2.3.1"]),
        ({"PatientBirthDate": "19000101-19991231"}, ["1.2.3.1"]),  # the others have no birth date
        ({"PatientName": "NOBODY"}, ["1.2.3.1", "1.2.3.2", "1.2.3.3", "1.2.3.4"]),  # not matched on
    ],
)
def test_study_level_matching(keys: dict[str, str], expected: list[str]) -> None:
    async def body() -> None:
        async with await _start(PacsPolicy(studies=ARCHIVE)) as pacs:
            outcome = await _find_in_thread(pacs, _query(**(STUDY_KEYS | keys)))
            assert pacs.finds == {"STUDY": 1}
        assert (_uids(outcome), outcome.final) == (expected, SUCCESS)

    run(body)


def test_ignored_keys_match_anything() -> None:
    policy = PacsPolicy(studies=ARCHIVE, find_ignored_keys=frozenset({0x00100030}))  # PatientBirthDate

    async def body() -> None:
        async with await _start(policy) as pacs:
            outcome = await _find_in_thread(pacs, _query(StudyInstanceUID="", PatientBirthDate="20000101"))
        assert len(outcome.matches) == len(ARCHIVE)
        assert [m.PatientBirthDate for m in outcome.matches] == ["19500101", "", "", ""]

    run(body)


@pytest.mark.parametrize("transfer_syntax", [IMPLICIT_VR_LE, EXPLICIT_VR_LE])
def test_matches_carry_exactly_the_keys_asked_for_with_the_studys_values(transfer_syntax: str) -> None:
    async def body() -> None:
        query = _query(**(STUDY_KEYS | {"PatientName": "", "StudyDate": "-20191231"}))
        async with await _start(PacsPolicy(studies=ARCHIVE)) as pacs:
            outcome = await _find_in_thread(pacs, query, transfer_syntaxes=[transfer_syntax])
        assert outcome.accepted == [(STUDY_ROOT_FIND, transfer_syntax)]
        (match,) = outcome.matches
        assert {element.keyword for element in match} == {"QueryRetrieveLevel", "PatientName", *STUDY_KEYS}
        assert match.QueryRetrieveLevel == "STUDY"
        assert (match.StudyInstanceUID, match.StudyDate, match.PatientID) == ("1.2.3.1", "20190101", "P001")
        assert list(match.OtherPatientIDs) == ["123-45-6789", "OLD1"]
        assert match.InstitutionName == "General Hospital"
        assert match.ModalitiesInStudy == "CT"
        assert (match.NumberOfStudyRelatedSeries, match.NumberOfStudyRelatedInstances) == (2, 5)
        assert match.PatientName == "", "a key the archive has no value for comes back empty"

    run(body)


def test_without_number_of_keys_the_counts_and_modalities_come_back_empty() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy(studies=ARCHIVE, fills_number_of=False)) as pacs:
            outcome = await _find_in_thread(pacs, _query(**(STUDY_KEYS | {"StudyInstanceUID": "1.2.3.2"})))
        (match,) = outcome.matches
        assert match.PatientID == "P002"
        for keyword in ("ModalitiesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"):
            assert keyword in match and match[keyword].VM == 0

    run(body)


def test_series_and_image_levels_are_synthesised_from_the_study() -> None:
    series_keys = {"StudyInstanceUID": "1.2.3.2", "SeriesInstanceUID": "", "Modality": "", "SeriesNumber": ""}
    image_keys = {"StudyInstanceUID": "1.2.3.2", "SeriesInstanceUID": "1.2.3.2.2", "SOPInstanceUID": ""}

    async def body() -> None:
        async with await _start(PacsPolicy(studies=ARCHIVE)) as pacs:
            series = await _find_in_thread(
                pacs, _query("SERIES", NumberOfSeriesRelatedInstances="", **series_keys)
            )
            images = await _find_in_thread(pacs, _query("IMAGE", **image_keys))
            every_image = await _find_in_thread(pacs, _query("IMAGE", SOPInstanceUID=""))
            modality = await _find_in_thread(pacs, _query("SERIES", Modality="PR", SeriesInstanceUID=""))
            assert pacs.finds == {"SERIES": 2, "IMAGE": 2}
        # Study 1.2.3.2: three series, modalities MR, PR, MR in turn, seven instances shared 3, 2, 2.
        assert [(s.SeriesInstanceUID, s.Modality, s.SeriesNumber) for s in series.matches] == [
            ("1.2.3.2.1", "MR", 1),
            ("1.2.3.2.2", "PR", 2),
            ("1.2.3.2.3", "MR", 3),
        ]
        assert [s.NumberOfSeriesRelatedInstances for s in series.matches] == [3, 2, 2]
        assert [i.SOPInstanceUID for i in images.matches] == ["1.2.3.2.2.1", "1.2.3.2.2.2"]
        assert len(every_image.matches) == sum(study.instances for study in ARCHIVE) == 16
        assert [s.SeriesInstanceUID for s in modality.matches] == ["1.2.3.2.2"]

    run(body)


def test_hierarchical_server_answers_lower_levels_only_below_one_study() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy(studies=ARCHIVE, find_hierarchical=True)) as pacs:
            relational = await _find_in_thread(
                pacs, _query("SERIES", StudyInstanceUID="", SeriesInstanceUID="")
            )
            one_study = await _find_in_thread(
                pacs, _query("SERIES", StudyInstanceUID="1.2.3.1", SeriesInstanceUID="")
            )
            images = await _find_in_thread(
                pacs, _query("IMAGE", StudyInstanceUID="1.2.3.1", SOPInstanceUID="")
            )
        assert (relational.matches, relational.final) == ([], SUCCESS)
        assert [s.SeriesInstanceUID for s in one_study.matches] == ["1.2.3.1.1", "1.2.3.1.2"]
        assert images.matches == [], "IMAGE level wants one series, too"

    run(body)


@pytest.mark.parametrize(
    ("caps", "matches", "final"),
    [
        ({"find_cap": 2}, 2, CANCEL),  # Orthanc's LimitFindResults: the cut is marked
        ({"find_silent_cap": 2}, 2, SUCCESS),  # a server that stops and says nothing
        ({"find_cap": 4}, 4, SUCCESS),  # exactly as many as the cap: nothing was cut
        ({"find_cap": 10, "find_silent_cap": 10}, 4, SUCCESS),
        ({"find_cap": 0}, 0, CANCEL),
    ],
)
def test_caps(caps: dict[str, int], matches: int, final: int) -> None:
    async def body() -> None:
        async with await _start(PacsPolicy(studies=ARCHIVE, **caps)) as pacs:
            outcome = await _find_in_thread(pacs, _query(StudyInstanceUID=""))
            assert pacs.find_responses == matches
        assert (_uids(outcome), outcome.final) == ([s.study_uid for s in ARCHIVE[:matches]], final)

    run(body)


@pytest.mark.parametrize("status", [0xA700, 0x0124, 0xC000])
def test_find_status_refuses_every_query(status: int) -> None:
    async def body() -> None:
        async with await _start(PacsPolicy(studies=ARCHIVE, find_status=status)) as pacs:
            outcome = await _find_in_thread(pacs, _query(StudyInstanceUID=""))
        assert (outcome.matches, outcome.final, outcome.aborted) == ([], status, False)

    run(body)


def test_find_abort_answers_a_find_with_an_abort() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy(find_abort=True)) as pacs:
            outcome = await _find_in_thread(pacs, _query(StudyInstanceUID=""))
            assert pacs.finds == {"STUDY": 1}
            echo = await _associate_in_thread(pacs)
        assert (outcome.aborted, outcome.matches, outcome.final) == (True, [], None)
        assert echo.established and echo.echo_status == 0, "C-ECHO still works"

    run(body)


def test_endless_answer_stops_at_a_cancel() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy(find_endless=True)) as pacs:
            outcome = await _find_in_thread(pacs, _query(StudyInstanceUID="", PatientID=""), cancel_after=50)
            assert pacs.cancels == 1
            assert pacs.find_responses == len(outcome.matches)
            after = await _find_in_thread(pacs, _query(StudyInstanceUID=""), cancel_after=3)
        assert outcome.final == CANCEL
        assert 50 <= len(outcome.matches) < simulator.MAX_FIND_RESPONSES
        assert len({(m.StudyInstanceUID, m.PatientID) for m in outcome.matches}) == 1, "the same fake match"
        assert after.final == CANCEL, "a new association, a new endless answer"

    run(body)


def test_invalid_queries_get_a_failure_status() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy(studies=ARCHIVE)) as pacs:
            patient_level = await _find_in_thread(pacs, _query("PATIENT", PatientID=""))
            without_level = Dataset()
            without_level.PatientID = ""
            no_level = await _find_in_thread(pacs, without_level)
        assert (patient_level.matches, patient_level.final) == ([], 0xA900)  # not in the Study Root model
        assert (no_level.matches, no_level.final) == ([], 0xA900)

    run(body)


# -- C-FIND with DCMTK's findscu ---------------------------------------------------------------


def _findscu() -> Path:
    from integration.servers import dcmtk_tool

    tool = dcmtk_tool("findscu")
    if tool is None:
        missing_software("DCMTK findscu is not installed")
    return tool


async def _run_findscu(pacs: SimulatedPacs, *arguments: str) -> str:
    process = await asyncio.create_subprocess_exec(
        str(_findscu()),
        "-v",
        "-S",
        *arguments,
        pacs.host,
        str(pacs.port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode(errors="replace")[-2000:]
    return output.decode(errors="replace")


def test_findscu_reads_the_capped_answer_and_its_cancel_status() -> None:
    async def body() -> None:
        with tempfile.TemporaryDirectory() as out:
            async with await _start(PacsPolicy(studies=ARCHIVE, find_cap=2)) as pacs:
                log = await _run_findscu(
                    pacs,
                    "-X",
                    "-od",
                    out,
                    *("-k", "QueryRetrieveLevel=STUDY", "-k", "StudyDate=20190101-"),
                    *("-k", "StudyInstanceUID", "-k", "PatientID", "-k", "NumberOfStudyRelatedInstances"),
                )
            answers = [dcmread(path) for path in sorted(Path(out).glob("rsp*.dcm"))]
        assert [(a.StudyInstanceUID, a.PatientID, a.NumberOfStudyRelatedInstances) for a in answers] == [
            ("1.2.3.1", "P001", 5),
            ("1.2.3.2", "P002", 7),
        ]
        assert "Received Final Find Response (Cancel: MatchingTerminatedDueToCancelRequest)" in log

    run(body)


def test_findscu_cancels_an_endless_answer() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy(find_endless=True)) as pacs:
            log = await _run_findscu(
                pacs, "-sr", "--cancel", "5", "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID"
            )
            assert pacs.cancels == 1
        assert "Sending Cancel Request (MsgID 1" in log
        assert "Received Final Find Response (Cancel: MatchingTerminatedDueToCancelRequest)" in log

    run(body)


# -- C-FIND on the wire --------------------------------------------------------------------------


def find_rq(
    query: Dataset | bytes, *, message_id: int = 1, context_id: int = 1, max_pdu: int = 16384
) -> list[bytes]:
    """A C-FIND-RQ (Study Root) as pynetdicom's DIMSE layer sends it, identifier in implicit VR LE."""
    primitive = C_FIND()
    primitive.MessageID = message_id
    primitive.AffectedSOPClassUID = STUDY_ROOT_FIND
    primitive.Priority = 2
    primitive.Identifier = BytesIO(query if isinstance(query, bytes) else encode(query, True, True))
    message = C_FIND_RQ()
    message.primitive_to_message(primitive)
    return [bytes(P_DATA_TF(p).encode()) for p in message.encode_msg(context_id, max_pdu)]


async def _find_session(
    pacs: SimulatedPacs, max_pdu: int = 16384
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await connect(pacs.host, pacs.port)
    writer.write(associate_rq(contexts=[(STUDY_ROOT_FIND, [IMPLICIT_VR_LE])], max_pdu=max_pdu))
    A_ASSOCIATE_AC_decoded(await read_pdu(reader))
    return reader, writer


async def _read_message(
    reader: asyncio.StreamReader, pdus: list[bytes] | None = None
) -> tuple[Dataset, bytes | None]:
    """One DIMSE message: its command set (decoded by pydicom) and its raw data set, if any."""
    command, data = b"", b""
    while True:
        pdu = await read_pdu(reader)
        assert pdu[0] == 0x04, pdu[:10].hex()
        if pdus is not None:
            pdus.append(pdu)
        offset = 6
        while offset < len(pdu):
            length = int.from_bytes(pdu[offset : offset + 4], "big")
            control, fragment = pdu[offset + 5], pdu[offset + 6 : offset + 4 + length]
            offset += 4 + length
            if control & 0x01:
                command += fragment
            else:
                data += fragment
            if control & 0x02:
                decoded = read_dataset(BytesIO(command), True, True)
                if not control & 0x01 or decoded.CommandDataSetType == 0x0101:
                    return decoded, data if not control & 0x01 else None


def test_find_response_command_set_is_what_pynetdicom_encodes() -> None:
    for status in (SUCCESS, CANCEL, 0xA700):
        primitive = C_FIND()
        primitive.MessageIDBeingRespondedTo = 300
        primitive.AffectedSOPClassUID = STUDY_ROOT_FIND
        primitive.Status = status
        message = C_FIND_RSP()
        message.primitive_to_message(primitive)
        (p_data,) = message.encode_msg(1, 0)
        ((_, fragment),) = p_data.presentation_data_value_list
        assert fragment[1:] == encode_find_response(300, status)
    assert encode_find_response(300, PENDING, True) == bytes.fromhex(
        "00000000 04000000 4c000000"  # (0000,0000) UL group length: 76 bytes follow
        "00000200 1c000000 312e322e3834302e31303030382e352e312e342e312e322e322e3100"  # affected SOP class
        "00000001 02000000 2080"  # command field: C-FIND-RSP
        "00002001 02000000 2c01"  # message ID being responded to: 300
        "00000008 02000000 0000"  # command data set type: an identifier follows
        "00000009 02000000 00ff"  # status: pending
    )


def test_find_answer_is_fragmented_to_the_peers_max_pdu() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy(studies=ARCHIVE)) as pacs:
            reader, writer = await _find_session(pacs, max_pdu=40)
            for pdu in find_rq(_query(**STUDY_KEYS), message_id=5, max_pdu=40):
                writer.write(pdu)
            pdus: list[bytes] = []
            messages = [await _read_message(reader, pdus) for _ in range(len(ARCHIVE) + 1)]
            writer.write(RELEASE_RQ)
            assert await read_to_eof(reader) == RELEASE_RP
            await close(writer)
        assert all(len(pdu) - 6 <= 40 for pdu in pdus) and len(pdus) > 3 * len(ARCHIVE)
        assert [command.Status for command, _ in messages] == [PENDING] * len(ARCHIVE) + [SUCCESS]
        assert all(command.MessageIDBeingRespondedTo == 5 for command, _ in messages)
        first = read_dataset(BytesIO(messages[0][1] or b""), True, True)
        assert (first.StudyInstanceUID, first.NumberOfStudyRelatedSeries) == ("1.2.3.1", 2)

    run(body)


def test_garbage_identifier_overruns_its_data_set() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy(studies=ARCHIVE, find_garbage_identifier=True)) as pacs:
            reader, writer = await _find_session(pacs)
            for pdu in find_rq(_query(StudyInstanceUID="", PatientID="")):
                writer.write(pdu)
            command, identifier = await _read_message(reader)
            await close(writer)
        assert command.Status == PENDING and identifier is not None
        # First element (0008,0052) QueryRetrieveLevel, implicit VR: tag, then a 32-bit length past the end.
        assert identifier[:4] == bytes.fromhex("0800 5200")
        assert int.from_bytes(identifier[4:8], "little") > len(identifier) - 8

    run(body)


@pytest.mark.parametrize(
    "identifier",
    [
        bytes.fromhex("08005200 06000000 5354554459 20 10002000 ff000000 41"),  # PatientID overruns
        bytes.fromhex("08005200 06000000 5354554459 20 1000"),  # a truncated element header
    ],
)
def test_malformed_query_gets_unable_to_process(identifier: bytes) -> None:
    async def body() -> None:
        async with await _start(PacsPolicy(studies=ARCHIVE)) as pacs:
            reader, writer = await _find_session(pacs)
            for pdu in find_rq(identifier):
                writer.write(pdu)
            command, data = await _read_message(reader)
            writer.write(RELEASE_RQ)
            assert await read_to_eof(reader) == RELEASE_RP
            await close(writer)
            assert pacs.finds == {"": 1}
        assert (command.Status, data) == (0xC000, None)

    run(body)


def test_endless_answer_ends_at_the_hard_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simulator, "MAX_FIND_RESPONSES", 40)

    async def body() -> None:
        async with await _start(PacsPolicy(find_endless=True)) as pacs:
            reader, writer = await _find_session(pacs)
            for pdu in find_rq(_query(StudyInstanceUID="")):
                writer.write(pdu)
            statuses = [(await _read_message(reader))[0].Status for _ in range(41)]
            writer.write(RELEASE_RQ)
            assert await read_to_eof(reader) == RELEASE_RP
            await close(writer)
            assert (pacs.cancels, pacs.find_responses) == (0, 40)
        assert statuses == [PENDING] * 40 + [CANCEL]

    run(body)


def test_peer_that_stops_reading_an_endless_answer_is_dropped() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy(find_endless=True), idle_timeout=0.5) as pacs:
            reader, writer = await _find_session(pacs)
            for pdu in find_rq(_query(StudyInstanceUID="")):
                writer.write(pdu)
            await asyncio.sleep(1.5)  # not reading: the server's buffers fill, then it waits, then gives up
            sent = pacs.find_responses
            await asyncio.sleep(0.3)
            assert pacs.find_responses == sent, "nothing more is produced for a peer that is gone"
            assert sent < 100_000, "held up by the peer, not by the hard cap"
            received = 0
            with contextlib.suppress(ConnectionResetError):
                async with asyncio.timeout(2):  # what was in flight, then the end of the connection
                    while chunk := await reader.read(1 << 16):
                        received += len(chunk)
            assert received < 64 * 1024 * 1024
            await close(writer)

    run(body)


def test_find_while_another_is_answered_is_aborted() -> None:
    async def body() -> None:
        async with await _start(PacsPolicy(find_endless=True)) as pacs:
            reader, writer = await _find_session(pacs)
            for pdu in find_rq(_query(StudyInstanceUID=""), message_id=1):
                writer.write(pdu)
            await _read_message(reader)
            for pdu in find_rq(_query(StudyInstanceUID=""), message_id=2):
                writer.write(pdu)  # no asynchronous operations were negotiated
            async with asyncio.timeout(3):
                assert (await read_to_eof(reader)).endswith(ABORT_BY_USER)
            await close(writer)

    run(body)


@pytest.mark.parametrize(
    "bad",
    [
        {"find_status": 0xFF00},
        {"find_status": 0x0000},
        {"find_status": 0x10000},
        {"find_cap": -1},
        {"find_silent_cap": -1},
        {"accept_contexts": frozenset({"not a uid"})},
        {"transfer_syntaxes": ()},
        {"transfer_syntaxes": (JPEG_BASELINE,)},
    ],
)
def test_policy_rejects_impossible_find_values(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        PacsPolicy(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [
        {"study_date": "2020-01-01"},
        {"study_date": "20200230"},
        {"study_uid": "1.2.x"},
        {"study_uid": "1." + "2" * 60},
        {"patient_id": "A\\B"},
        {"series": 0, "instances": 3},
        {"series": -1},
        {"modalities": ("CT", "SR"), "series": 1, "instances": 2},
    ],
)
def test_sim_study_rejects_impossible_values(bad: dict[str, Any]) -> None:
    fields: dict[str, Any] = {
        "study_uid": "1.2.3",
        "patient_id": "P1",
        "study_date": "20200101",
        "modalities": ("CT",),
        "series": 1,
        "instances": 1,
    }
    with pytest.raises(ValueError):
        SimStudy(**(fields | bad))
