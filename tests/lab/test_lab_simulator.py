"""The simulated PACS answers pynetdicom's SCU, and raw PDUs, exactly as its policy says."""

from __future__ import annotations

import asyncio
import socket
import time
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
from pynetdicom.dimse_messages import C_ECHO_RSP
from pynetdicom.dimse_primitives import C_ECHO
from pynetdicom.pdu import A_ASSOCIATE_AC

from pacsaudit.lab.simulator import (
    PacsPolicy,
    SimulatedPacs,
    encode_accept,
    encode_echo_response,
    start_simulated_pacs,
)

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
