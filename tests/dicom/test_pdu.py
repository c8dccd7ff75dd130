"""Golden wire bytes for the PDUs pacsaudit sends and reads, annotated field by field (PS3.8 9.3)."""

from __future__ import annotations

import pytest

from pacsaudit.dicom.pdu import (
    AssociateRequest,
    DicomProtocolError,
    PresentationContext,
    PresentationDataValue,
    decode_abort,
    decode_associate_accept,
    decode_associate_reject,
    decode_p_data,
    encode_abort,
    encode_associate_request,
    encode_p_data,
    encode_release_request,
)

# A-ASSOCIATE-RQ: called "ANY-SCP", calling "ECHOSCU", one Verification context (ID 1,
# implicit VR LE), max PDU 16384, implementation class UID "1.2.3", version name "V1".
ASSOCIATE_RQ = bytes.fromhex(
    "01 00 000000aa"  # PDU type 1, reserved, PDU length 170
    "0001 0000"  # protocol version 1, reserved
    + b"ANY-SCP         ".hex()  # called AE title, 16 bytes space padded
    + b"ECHOSCU         ".hex()  # calling AE title
    + "00" * 32  # reserved
    + "10 00 0015"
    + b"1.2.840.10008.3.1.1.1".hex()  # application context item
    + "20 00 002e"  # presentation context item, 46 bytes
    "01 00 00 00"  # context ID 1, reserved x3
    "30 00 0011"
    + b"1.2.840.10008.1.1".hex()  # abstract syntax: Verification
    + "40 00 0011"
    + b"1.2.840.10008.1.2".hex()  # transfer syntax: implicit VR little endian
    + "50 00 0017"  # user information item, 23 bytes
    "51 00 0004 00004000"  # maximum length received: 16384
    "52 00 0005"
    + b"1.2.3".hex()  # implementation class UID
    + "55 00 0002"
    + b"V1".hex()  # implementation version name
)

# A-ASSOCIATE-AC as DCMTK 3.6.7 answers it: context 1 accepted (result 0) with implicit VR LE,
# max PDU 16384, class UID 1.2.276.0.7230010.3.0.3.6.7, version OFFIS_DCMTK_367.
ASSOCIATE_AC = bytes.fromhex(
    "02 00 000000b8"  # PDU type 2, reserved, PDU length 184
    "0001 0000"
    + b"ANY-SCP         ".hex()
    + b"ECHOSCU         ".hex()
    + "00" * 32
    + "10 00 0015"
    + b"1.2.840.10008.3.1.1.1".hex()
    + "21 00 0019"  # presentation context (AC) item, 25 bytes
    "01 00 00 00"  # context ID 1, reserved, result 0 (acceptance), reserved
    "40 00 0011" + b"1.2.840.10008.1.2".hex() + "50 00 003a"  # user information, 58 bytes
    "51 00 0004 00004000"
    "52 00 001b" + b"1.2.276.0.7230010.3.0.3.6.7".hex() + "55 00 000f" + b"OFFIS_DCMTK_367".hex()
)

ASSOCIATE_RJ = bytes.fromhex("03 00 00000004 00 01 01 07")  # permanent, service-user, called AE unknown
ABORT = bytes.fromhex("07 00 00000004 00 00 02 01")  # source 2 (provider), reason 1 (unrecognized PDU)
RELEASE_RQ = bytes.fromhex("05 00 00000004 00000000")


def test_associate_request_encodes_to_golden_bytes() -> None:
    rq = AssociateRequest(
        called_ae="ANY-SCP",
        calling_ae="ECHOSCU",
        contexts=(PresentationContext(1, "1.2.840.10008.1.1", ("1.2.840.10008.1.2",)),),
        max_pdu_length=16384,
        implementation_class_uid="1.2.3",
        implementation_version_name="V1",
    )
    assert encode_associate_request(rq) == ASSOCIATE_RQ


def test_associate_request_refuses_invalid_ae_titles() -> None:
    rq = AssociateRequest("A" * 17, "X", (), 16384, "1.2.3")
    with pytest.raises(ValueError, match="1-16"):
        encode_associate_request(rq)


def test_associate_accept_decodes_dcmtk_answer() -> None:
    ac = decode_associate_accept(ASSOCIATE_AC[6:])
    assert ac.contexts == {1: (0, "1.2.840.10008.1.2")}
    assert ac.max_pdu_length == 16384
    assert ac.implementation_class_uid == "1.2.276.0.7230010.3.0.3.6.7"
    assert ac.implementation_version_name == "OFFIS_DCMTK_367"
    assert ac.application_context == "1.2.840.10008.3.1.1.1"


def test_associate_accept_strips_padding_and_escapes_non_ascii() -> None:
    body = bytearray(ASSOCIATE_AC[6:])
    # Replace the version name's last two characters with a NUL pad and a non-ASCII byte.
    at = body.index(b"OFFIS_DCMTK_367")
    body[at + 13 : at + 15] = b"\xe9\x00"
    ac = decode_associate_accept(bytes(body))
    assert ac.implementation_version_name == "OFFIS_DCMTK_3\\xe9"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:40], "shorter than its fixed part"),
        (lambda b: b[:-3], "overruns the PDU"),  # last item claims more than is left
        (lambda b: b[:68] + b"\x21\x00\x00\x02\x01\x00", "shorter than 4 bytes"),
        (lambda b: b[:68] + b"\x50\x00\x00\x06\x51\x00\x00\x02\x00\x01", "not 4"),
        (lambda b: b[:68] + b"\x10\x00", "truncated item header"),
    ],
)
def test_associate_accept_rejects_lying_lengths(mutate, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DicomProtocolError, match=message):
        decode_associate_accept(mutate(ASSOCIATE_AC[6:]))


def test_reject_and_abort_decode() -> None:
    rj = decode_associate_reject(ASSOCIATE_RJ[6:])
    assert (rj.result, rj.source, rj.reason) == (1, 1, 7)
    ab = decode_abort(ABORT[6:])
    assert (ab.source, ab.reason) == (2, 1)
    with pytest.raises(DicomProtocolError):
        decode_associate_reject(b"\x00\x01\x01")


def test_release_and_abort_encode() -> None:
    assert encode_release_request() == RELEASE_RQ
    assert encode_abort() == bytes.fromhex("07 00 00000004 00 00 00 00")


def test_p_data_round_trip_and_control_header() -> None:
    pdvs = [PresentationDataValue(3, True, True, b"\x01\x02"), PresentationDataValue(3, False, False, b"xy")]
    raw = encode_p_data(pdvs)
    # PDU type 4, length 16; PDV: length 4, context 3, control 0x03 (command, last), data;
    # then length 4, context 3, control 0x00 (data set, more to come), data.
    assert raw == bytes.fromhex("04 00 00000010 00000004 03 03 0102 00000004 03 00 7879")
    assert decode_p_data(raw[6:]) == pdvs


@pytest.mark.parametrize(
    "body",
    [b"", b"\x00\x00\x00\x01\x01", b"\x00\x00\x00\x09\x01\x03abc", b"\x00\x00\x00\x01\x01\x03"],
)
def test_p_data_rejects_malformed_pdvs(body: bytes) -> None:
    with pytest.raises(DicomProtocolError):
        decode_p_data(body)


def test_pynetdicom_reads_our_request_as_we_meant_it() -> None:
    """An independent codec (pynetdicom's) decodes our A-ASSOCIATE-RQ to the same fields."""
    from pynetdicom.pdu import A_ASSOCIATE_RQ

    theirs = A_ASSOCIATE_RQ()
    theirs.decode(ASSOCIATE_RQ)
    assert theirs.called_ae_title == "ANY-SCP"
    assert theirs.calling_ae_title == "ECHOSCU"
    (context,) = theirs.presentation_context
    assert (context.context_id, context.abstract_syntax) == (1, "1.2.840.10008.1.1")
    assert context.transfer_syntax == ["1.2.840.10008.1.2"]
    info = {type(item).__name__: item for item in theirs.user_information.user_data}
    assert info["MaximumLengthSubItem"].maximum_length_received == 16384
    assert info["ImplementationClassUIDSubItem"].implementation_class_uid == "1.2.3"
