"""DIMSE command sets: golden C-ECHO-RQ bytes and a parser that distrusts every length."""

from __future__ import annotations

import struct

import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from pacsaudit.dicom.dimse import C_ECHO_RSP, decode_command_set, encode_c_echo_rq
from pacsaudit.dicom.pdu import DicomProtocolError

# C-ECHO-RQ, message ID 7, implicit VR little endian: tag (group, element LE), length (LE), value.
C_ECHO_RQ_7 = bytes.fromhex(
    "0000 0000 04000000 38000000"  # (0000,0000) CommandGroupLength UL = 56
    "0000 0200 12000000"
    + b"1.2.840.10008.1.1\x00".hex()  # (0000,0002) AffectedSOPClassUID, NUL-padded
    + "0000 0001 02000000 3000"  # (0000,0100) CommandField = 0x0030 C-ECHO-RQ
    "0000 1001 02000000 0700"  # (0000,0110) MessageID = 7
    "0000 0008 02000000 0101"  # (0000,0800) CommandDataSetType = 0x0101 (no data set)
)


def test_c_echo_rq_golden_bytes() -> None:
    assert encode_c_echo_rq(7, "1.2.840.10008.1.1") == C_ECHO_RQ_7


def test_c_echo_rq_matches_what_pydicom_writes() -> None:
    ds = Dataset()
    ds.CommandGroupLength = 56
    ds.AffectedSOPClassUID = "1.2.840.10008.1.1"
    ds.CommandField = 0x0030
    ds.MessageID = 7
    ds.CommandDataSetType = 0x0101
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, True
    write_dataset(buffer, ds)
    assert buffer.getvalue() == C_ECHO_RQ_7


def _element(elem: int, value: bytes) -> bytes:
    return struct.pack("<HHL", 0, elem, len(value)) + value


def test_c_echo_rsp_fields_are_read() -> None:
    raw = (
        _element(0x0100, struct.pack("<H", C_ECHO_RSP))
        + _element(0x0120, struct.pack("<H", 7))
        + _element(0x0800, struct.pack("<H", 0x0101))
        + _element(0x0900, struct.pack("<H", 0))
    )
    cmd = decode_command_set(raw)
    assert (cmd.command_field, cmd.message_id_responded, cmd.status, cmd.has_data_set) == (
        C_ECHO_RSP,
        7,
        0,
        False,
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00\x00\x00\x01\xff\xff\xff\xff",  # a 4 GB element
        b"\x08\x00\x18\x00\x02\x00\x00\x00ab",  # group 0008 inside a command set
        b"\x00\x00\x00\x01",  # truncated element header
        b"".join(_element(i, b"") for i in range(100)),  # too many elements
    ],
)
def test_hostile_command_sets_are_errors(raw: bytes) -> None:
    with pytest.raises(DicomProtocolError):
        decode_command_set(raw)


def test_status_of_wrong_size_is_an_error() -> None:
    with pytest.raises(DicomProtocolError, match="not 2"):
        _ = decode_command_set(_element(0x0900, b"\x00\x00\x00")).status
