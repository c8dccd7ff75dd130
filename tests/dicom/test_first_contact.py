"""The scripted first association: the C-ECHO answer is decoded once per distinct PDU body and
remembered, and what is remembered means exactly what decoding it again would."""

from __future__ import annotations

import asyncio
from typing import Any

from pacsaudit.dicom import AssociateRequest, PduLimits, PresentationContext
from pacsaudit.dicom import first_contact as fc
from pacsaudit.dicom.constants import IMPLEMENTATION_CLASS_UID, IMPLICIT_VR_LE, VERIFICATION
from pacsaudit.dicom.pdu import PresentationDataValue, encode_associate_request, encode_p_data
from pacsaudit.lab.simulator import encode_accept, encode_echo_response

from .fakes import RecordingTransport

RELEASE_RP = bytes.fromhex("0600 0000 0004 0000 0000")


def _request() -> AssociateRequest:
    return AssociateRequest(
        called_ae="PAQWERTYUIOP",
        calling_ae="PAASDFGHJKLZ",
        contexts=(PresentationContext(1, VERIFICATION, (IMPLICIT_VR_LE,)),),
        max_pdu_length=16384,
        implementation_class_uid=IMPLEMENTATION_CLASS_UID,
    )


def _echo_pdus(status: int, message_id: int = 1, *, split: bool = False) -> list[bytes]:
    command = encode_echo_response(message_id, status)
    if not split:
        return [encode_p_data([PresentationDataValue(1, True, True, command)])]
    half = len(command) // 2
    return [
        encode_p_data([PresentationDataValue(1, True, False, command[:half])]),
        encode_p_data([PresentationDataValue(1, True, True, command[half:])]),
    ]


async def _play(answers: list[bytes]) -> fc.FirstContact:
    loop = asyncio.get_running_loop()
    request = _request()
    contact = fc.FirstContact(PduLimits(), 5.0, request, loop, echo_and_release=True)
    wire = RecordingTransport()
    contact.connection_made(wire)
    accept = encode_accept(encode_associate_request(request))
    for chunk in [accept, *answers, RELEASE_RP]:
        contact.data_received(chunk)
    await asyncio.wait_for(contact.finished, 1.0)
    return contact


def _play_all(answers: list[list[bytes]]) -> list[fc.FirstContact]:
    async def go() -> list[fc.FirstContact]:
        return [await _play(a) for a in answers]

    return asyncio.run(go())


def test_known_echo_answers_are_remembered_and_mean_what_decoding_says(monkeypatch: Any) -> None:
    monkeypatch.setattr(fc, "_ECHO_ANSWERS", {})
    success, refused = _echo_pdus(0x0000), _echo_pdus(0x0110)
    played = _play_all([success, refused, success, refused])
    assert [c.echo for c in played] == [0x0000, 0x0110, 0x0000, 0x0110]
    assert all(c.echo_error is None for c in played)
    assert {success[0][6:]: 0x0000, refused[0][6:]: 0x0110} == fc._ECHO_ANSWERS


def test_fragmented_or_wrong_answers_are_decoded_every_time_and_never_remembered(monkeypatch: Any) -> None:
    monkeypatch.setattr(fc, "_ECHO_ANSWERS", {})
    fragmented = _echo_pdus(0x0000, split=True)
    other_message = _echo_pdus(0x0000, message_id=7)
    played = _play_all([fragmented, fragmented, other_message, other_message])
    assert [c.echo for c in played[:2]] == [0x0000, 0x0000]
    assert all(c.echo is None and c.echo_error is not None for c in played[2:])
    assert fc._ECHO_ANSWERS == {}


def test_remembered_answers_are_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(fc, "_ECHO_ANSWERS", {})
    monkeypatch.setattr(fc, "_ECHO_ANSWERS_KEPT", 3)
    played = _play_all([_echo_pdus(status) for status in range(0xA700, 0xA708)])
    assert [c.echo for c in played] == list(range(0xA700, 0xA708))
    assert len(fc._ECHO_ANSWERS) == 3


def test_a_failed_exchange_keeps_neither_its_bytes_nor_the_frames_that_raised() -> None:
    """What a failure leaves waits for the garbage collector (a stored exception's traceback
    makes a cycle with the protocol): it must not pin what the peer sent."""

    async def go() -> tuple[fc.FirstContact, fc.FirstContact, BaseException]:
        loop = asyncio.get_running_loop()
        echoing = fc.FirstContact(PduLimits(), 5.0, _request(), loop, echo_and_release=True)
        echoing.connection_made(RecordingTransport())
        echoing.data_received(encode_accept(encode_associate_request(_request())))
        wrong = _echo_pdus(0x0000, message_id=7)[0]  # answers another message: the echo fails
        echoing.data_received(wrong + b"\x00" * 60_000)
        await asyncio.wait_for(echoing.finished, 1.0)
        associating = fc.FirstContact(PduLimits(), 5.0, _request(), loop, echo_and_release=True)
        associating.connection_made(RecordingTransport())
        associating.data_received(bytes.fromhex("05 00 00000004 0000 0000") + b"\x00" * 60_000)
        try:
            await associating.finished
        except Exception as exc:  # an A-RELEASE-RQ in answer to the A-ASSOCIATE-RQ: a protocol error
            return echoing, associating, exc
        raise AssertionError("the association should have failed")

    echoing, associating, failure = asyncio.run(go())
    assert echoing.echo_error is not None and echoing.echo_error.__traceback__ is None
    assert len(echoing._buffer) == 0 and len(associating._buffer) == 0
    assert "0x05" in str(failure)
