"""C-FIND identifiers: golden bytes, agreement with pydicom, and a decoder that hostile answers cannot break.

The decoder's contract: whatever the bytes, it returns a dict or raises `DicomProtocolError`,
and its error messages never quote a byte of an element value (values are patient data).
"""

from __future__ import annotations

import random
import struct
from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as PydicomSequence

from pacsaudit.dicom.constants import DEFLATED_EXPLICIT_VR_LE, EXPLICIT_VR_BE, EXPLICIT_VR_LE, IMPLICIT_VR_LE
from pacsaudit.dicom.identifier import MAX_ELEMENTS, MAX_NESTING, decode_identifier, encode_identifier
from pacsaudit.dicom.pdu import DicomProtocolError

QUERY_RETRIEVE_LEVEL = 0x00080052
STUDY_DATE = 0x00080020
MODALITIES_IN_STUDY = 0x00080061
PATIENT_NAME = 0x00100010
PATIENT_ID = 0x00100020
STUDY_INSTANCE_UID = 0x0020000D
NUMBER_OF_SERIES = 0x00201206
NUMBER_OF_INSTANCES = 0x00201208

STUDY_QUERY: list[tuple[int, str, str | list[str]]] = [
    (STUDY_INSTANCE_UID, "UI", ""),
    (QUERY_RETRIEVE_LEVEL, "CS", "STUDY"),
    (STUDY_DATE, "DA", "20200101-20201231"),
    (MODALITIES_IN_STUDY, "CS", ["CT", "MR", "CR"]),
    (PATIENT_ID, "LO", "1*"),
    (NUMBER_OF_SERIES, "IS", ""),
]

# The same query, implicit VR little endian: tag (group, element LE), 4-byte length, value.
STUDY_QUERY_IMPLICIT = bytes.fromhex(
    "0800 2000 12000000"
    + b"20200101-20201231 ".hex()  # (0008,0020) StudyDate: a range, space-padded to 18
    + "0800 5200 06000000"
    + b"STUDY ".hex()  # (0008,0052) QueryRetrieveLevel, space-padded
    + "0800 6100 08000000"
    + b"CT\\MR\\CR".hex()  # (0008,0061) ModalitiesInStudy: three values, backslash-separated
    + "1000 2000 02000000"
    + b"1*".hex()  # (0010,0020) PatientID: a wildcard prefix
    + "2000 0d00 00000000"  # (0020,000D) StudyInstanceUID: zero length = return key
    + "2000 0612 00000000"  # (0020,1206) NumberOfStudyRelatedSeries: return key
)
# Explicit VR little endian: tag, 2-character VR, 2-byte length, value.
STUDY_QUERY_EXPLICIT = bytes.fromhex(
    "0800 2000" + b"DA".hex() + "1200" + b"20200101-20201231 ".hex()
    + "0800 5200" + b"CS".hex() + "0600" + b"STUDY ".hex()
    + "0800 6100" + b"CS".hex() + "0800" + b"CT\\MR\\CR".hex()
    + "1000 2000" + b"LO".hex() + "0200" + b"1*".hex()
    + "2000 0d00" + b"UI".hex() + "0000"
    + "2000 0612" + b"IS".hex() + "0000"
)  # fmt: skip


def _pydicom_bytes(ds: Dataset, *, implicit: bool) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, implicit
    write_dataset(buffer, ds)
    return buffer.getvalue()


def _study_query_dataset() -> Dataset:
    ds = Dataset()
    ds.StudyInstanceUID = ""
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyDate = "20200101-20201231"
    ds.ModalitiesInStudy = ["CT", "MR", "CR"]
    ds.PatientID = "1*"
    ds.NumberOfStudyRelatedSeries = None
    return ds


# Encoding


def test_study_query_golden_bytes_implicit() -> None:
    assert encode_identifier(STUDY_QUERY, IMPLICIT_VR_LE) == STUDY_QUERY_IMPLICIT


def test_study_query_golden_bytes_explicit() -> None:
    assert encode_identifier(STUDY_QUERY, EXPLICIT_VR_LE) == STUDY_QUERY_EXPLICIT


@pytest.mark.parametrize("implicit", [True, False])
def test_encoding_matches_what_pydicom_writes(implicit: bool) -> None:
    ts = IMPLICIT_VR_LE if implicit else EXPLICIT_VR_LE
    assert encode_identifier(STUDY_QUERY, ts) == _pydicom_bytes(_study_query_dataset(), implicit=implicit)


@pytest.mark.parametrize("implicit", [True, False])
def test_every_vr_pads_like_pydicom(implicit: bool) -> None:
    """Odd values: text VRs pad with a space, UI with a NUL; US is binary."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.StudyTime = "101010.12"
    ds.RetrieveAETitle = "ORTHANC"
    ds.StudyID = "S1"
    ds.PatientName = "DOE*"
    ds.SOPClassesInStudy = ["1.2.3", "1.2.840.1"]
    ds.InstanceNumber = "7"
    ds.StudyDescription = "abc"
    ds.Rows = 512
    ds.Columns = None
    elements: list[tuple[int, str, str | list[str]]] = [
        (0x00080005, "CS", "ISO_IR 100"),
        (0x00080030, "TM", "101010.12"),
        (0x00080054, "AE", "ORTHANC"),
        (0x00200010, "SH", "S1"),
        (PATIENT_NAME, "PN", "DOE*"),
        (0x00080062, "UI", ["1.2.3", "1.2.840.1"]),
        (0x00200013, "IS", "7"),
        (0x00081030, "LO", "abc"),
        (0x00280010, "US", "512"),
        (0x00280011, "US", ""),
    ]
    ts = IMPLICIT_VR_LE if implicit else EXPLICIT_VR_LE
    assert encode_identifier(elements, ts) == _pydicom_bytes(ds, implicit=implicit)


@pytest.mark.parametrize(
    ("elements", "words"),
    [
        ([(PATIENT_ID, "OB", "")], "VR 'OB'"),
        ([(PATIENT_ID, "LO", "Müller")], "ASCII"),
        ([(PATIENT_ID, "LO", ""), (PATIENT_ID, "LO", "1")], "twice"),
        ([(0x00020010, "UI", "1.2")], "cannot be part"),
        ([(0xFFFEE000, "UI", "")], "cannot be part"),
        ([(MODALITIES_IN_STUDY, "CS", ["CT\\MR", "CR"])], "backslash"),
        ([(0x00280010, "US", "70000")], "0-65535"),
        ([(PATIENT_ID, "LO", "x" * 70_000)], "65535 bytes"),
    ],
)
def test_encoder_refuses_what_it_cannot_write(
    elements: list[tuple[int, str, str | list[str]]], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        encode_identifier(elements, IMPLICIT_VR_LE)


# Decoding what real encoders write

WANTED = frozenset(
    {STUDY_INSTANCE_UID, STUDY_DATE, MODALITIES_IN_STUDY, PATIENT_ID, NUMBER_OF_SERIES, NUMBER_OF_INSTANCES}
)


def _answer_dataset(*, undefined_lengths: bool) -> Dataset:
    """A C-FIND answer with what servers add around the keys: sequences, private tags, binary VRs."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.StudyDate = "20200102"
    ds.QueryRetrieveLevel = "STUDY"
    ds.ModalitiesInStudy = ["CT", "SR"]
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "123-45-6789"
    inner = Dataset()
    inner.ReferencedSOPInstanceUID = "1.2.3.4"
    inner.PatientName = "Inner^Name"
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.PatientID = "NOT-TOP-LEVEL"  # a wanted tag inside a sequence must not leak out
    item.ReferencedImageSequence = PydicomSequence([inner])
    ds.ReferencedStudySequence = PydicomSequence([item, Dataset()])
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.NumberOfStudyRelatedSeries = "3"
    ds.NumberOfStudyRelatedInstances = "120"
    ds.add_new(0x00091010, "LO", "private")
    ds.add_new(0x00091011, "OB", b"\x01\x02\x03\x04")
    ds.Rows = 512
    if undefined_lengths:
        for seq_ds in (ds, item):
            for elem in seq_ds:
                if elem.VR == "SQ":
                    elem.is_undefined_length = True
                    for sub in elem.value:
                        sub.is_undefined_length_sequence_item = True
    return ds


EXPECTED = {
    STUDY_DATE: "20200102",
    MODALITIES_IN_STUDY: "CT\\SR",
    PATIENT_ID: "123-45-6789",
    STUDY_INSTANCE_UID: "1.2.826.0.1.3680043.8.498.1",
    NUMBER_OF_SERIES: "3",
    NUMBER_OF_INSTANCES: "120",
}


@pytest.mark.parametrize("implicit", [True, False])
@pytest.mark.parametrize("undefined_lengths", [True, False])
def test_decodes_what_pydicom_writes_and_skips_sequences(implicit: bool, undefined_lengths: bool) -> None:
    raw = _pydicom_bytes(_answer_dataset(undefined_lengths=undefined_lengths), implicit=implicit)
    ts = IMPLICIT_VR_LE if implicit else EXPLICIT_VR_LE
    assert decode_identifier(raw, ts, WANTED) == EXPECTED


@pytest.mark.parametrize("implicit", [True, False])
def test_round_trip_through_pydicom(implicit: bool) -> None:
    ts = IMPLICIT_VR_LE if implicit else EXPLICIT_VR_LE
    raw = encode_identifier(STUDY_QUERY, ts)
    wanted = frozenset(tag for tag, _, _ in STUDY_QUERY)
    decoded = decode_identifier(raw, ts, wanted)
    ds = read_dataset(BytesIO(raw), implicit, True)
    for tag in wanted:
        value = ds[tag].value
        expected = "\\".join(value) if isinstance(value, MultiValue) else str(value or "")
        assert decoded[tag] == expected


def test_explicit_us_is_decimal_text_and_binary_vrs_are_skipped() -> None:
    ds = Dataset()
    ds.Rows = 512
    ds.add_new(0x00091011, "OB", b"\x01\x02")
    ds.add_new(0x00280034, "IS", ["1", "1"])
    raw = _pydicom_bytes(ds, implicit=False)
    assert decode_identifier(raw, EXPLICIT_VR_LE, frozenset({0x00280010, 0x00091011, 0x00280034})) == {
        0x00280010: "512",
        0x00280034: "1\\1",
    }


def test_utf8_only_when_the_data_set_says_so() -> None:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientID = "Jörg"
    raw = _pydicom_bytes(ds, implicit=True)
    assert decode_identifier(raw, IMPLICIT_VR_LE, frozenset({PATIENT_ID})) == {PATIENT_ID: "Jörg"}
    latin = encode_identifier([(PATIENT_ID, "LO", "J")], IMPLICIT_VR_LE).replace(b"J ", b"J\xf6")
    assert decode_identifier(latin, IMPLICIT_VR_LE, frozenset({PATIENT_ID})) == {PATIENT_ID: "Jö"}


def test_first_of_two_equal_tags_wins_and_order_is_tolerated() -> None:
    one = encode_identifier([(PATIENT_ID, "LO", "A1")], IMPLICIT_VR_LE)
    two = encode_identifier([(PATIENT_ID, "LO", "B2")], IMPLICIT_VR_LE)
    date = encode_identifier([(STUDY_DATE, "DA", "20200101")], IMPLICIT_VR_LE)
    assert decode_identifier(one + date + two, IMPLICIT_VR_LE, frozenset({PATIENT_ID, STUDY_DATE})) == {
        PATIENT_ID: "A1",
        STUDY_DATE: "20200101",
    }


def test_empty_identifier_is_an_empty_dict() -> None:
    assert decode_identifier(b"", EXPLICIT_VR_LE, WANTED) == {}


@pytest.mark.parametrize(
    ("ts", "words"),
    [
        (EXPLICIT_VR_BE, "never proposed"),
        (DEFLATED_EXPLICIT_VR_LE, "never proposed"),
        ("1.2.840.10008.1.2.4.50", "not one pacsaudit handles"),
    ],
)
def test_other_transfer_syntaxes_are_clear_errors(ts: str, words: str) -> None:
    with pytest.raises(DicomProtocolError, match=words):
        decode_identifier(b"", ts, WANTED)
    with pytest.raises(DicomProtocolError, match=words):
        encode_identifier([], ts)


# Hostile answers

SECRET = b"SECRETDOE"
"""Planted in values: no error message may ever contain it (nor any other value byte)."""


def _implicit(group: int, elem: int, length: int, value: bytes = b"") -> bytes:
    return struct.pack("<HHL", group, elem, length) + value


def _explicit(group: int, elem: int, vr: bytes, length: int, value: bytes = b"") -> bytes:
    if vr in (b"SQ", b"OB", b"OW", b"UN", b"UT"):
        return struct.pack("<HH2s2xL", group, elem, vr, length) + value
    return struct.pack("<HH2sH", group, elem, vr, length) + value


ITEM_START = _implicit(0xFFFE, 0xE000, 0xFFFFFFFF)
ITEM_END = _implicit(0xFFFE, 0xE00D, 0)
SEQ_END = _implicit(0xFFFE, 0xE0DD, 0)
PATIENT_NAME_SECRET = _implicit(0x0010, 0x0010, 10, SECRET + b" ")


def _nested(depth: int) -> bytes:
    """`depth` undefined-length sequences inside each other, each in an undefined-length item."""
    raw = PATIENT_NAME_SECRET
    for _ in range(depth):
        raw = _implicit(0x0008, 0x1115, 0xFFFFFFFF) + ITEM_START + raw + ITEM_END + SEQ_END
    return raw


HOSTILE: list[tuple[bytes, str, str]] = [
    # a 4 GB length on a short value
    (_implicit(0x0010, 0x0020, 0xFFFFFFFE, SECRET), IMPLICIT_VR_LE, "(0010,0020) at offset 8 overruns"),
    # a length a few bytes past the end, implicit and explicit
    (_implicit(0x0010, 0x0020, 12, SECRET), IMPLICIT_VR_LE, "overruns"),
    (_explicit(0x0010, 0x0010, b"PN", 200, SECRET), EXPLICIT_VR_LE, "overruns"),
    # a defined-length sequence announcing nearly 4 GB
    (_explicit(0x0008, 0x1115, b"SQ", 0xFFFFFFF0, SECRET), EXPLICIT_VR_LE, "overruns"),
    # headers cut short: 2 bytes of a next tag, 6 of an explicit header, 10 of a long-VR one
    (PATIENT_NAME_SECRET + b"\x10\x00", IMPLICIT_VR_LE, "truncated element header at offset 18"),
    (_explicit(0x0010, 0x0010, b"PN", 4, b"AB")[:6], EXPLICIT_VR_LE, "truncated"),
    (_explicit(0x0008, 0x1115, b"SQ", 0xFFFFFFFF)[:10], EXPLICIT_VR_LE, "truncated element header"),
    # undefined-length sequence without its delimiters (item open; nothing at all)
    (_implicit(0x0008, 0x1115, 0xFFFFFFFF) + ITEM_START + PATIENT_NAME_SECRET, IMPLICIT_VR_LE,
     "never delimited"),
    (_implicit(0x0008, 0x1115, 0xFFFFFFFF), IMPLICIT_VR_LE, "sequence at offset 8 is never delimited"),
    # one level deeper than allowed
    (_nested(MAX_NESTING + 1), IMPLICIT_VR_LE, f"nested deeper than {MAX_NESTING}"),
    # an item where a data set element belongs
    (ITEM_START + PATIENT_NAME_SECRET + ITEM_END, IMPLICIT_VR_LE, "outside any sequence"),
    # an element where an item belongs
    (_implicit(0x0008, 0x1115, 0xFFFFFFFF) + PATIENT_NAME_SECRET + SEQ_END, IMPLICIT_VR_LE,
     "(0010,0010) at offset 8 inside a sequence"),
    # a sequence delimiter closing an item
    (_implicit(0x0008, 0x1115, 0xFFFFFFFF) + ITEM_START + SEQ_END, IMPLICIT_VR_LE,
     "misplaced delimiter"),
    # a delimiter carrying a length (and bytes)
    (_implicit(0x0008, 0x1115, 0xFFFFFFFF) + _implicit(0xFFFE, 0xE0DD, 10, SECRET + b" "),
     IMPLICIT_VR_LE, "has a length"),
    # an unknown (FFFE,xxxx) inside an item
    (_implicit(0x0008, 0x1115, 0xFFFFFFFF) + ITEM_START + _implicit(0xFFFE, 0xE0FF, 0),
     IMPLICIT_VR_LE, "inside an item"),
    # a short-VR length of 65535
    (_explicit(0x0010, 0x0010, b"PN", 0xFFFF)[:6] + b"\xff\xff\xff\xff" + SECRET, EXPLICIT_VR_LE,
     "overruns"),
    # VR bytes that are not a VR
    (struct.pack("<HH2sH", 0x0010, 0x0010, b"\x00Z", 10) + SECRET + b" ", EXPLICIT_VR_LE,
     "(0010,0010) at offset 0 has an invalid VR"),
    # undefined length on a VR that cannot have one
    (_explicit(0x0010, 0x0010, b"UT", 0xFFFFFFFF, SECRET), EXPLICIT_VR_LE, "undefined length"),
    # a wanted US of 3 bytes
    (_explicit(0x0028, 0x0010, b"US", 3, b"\x00\x02\x00"), EXPLICIT_VR_LE, "ragged length"),
    # 10 001 empty elements
    (_implicit(0x0010, 0x0010, 0) * (MAX_ELEMENTS + 1), IMPLICIT_VR_LE, f"more than {MAX_ELEMENTS}"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "ts", "words"), HOSTILE, ids=[f"{i}-{w}" for i, (_, _, w) in enumerate(HOSTILE)]
)
def test_hostile_identifiers_are_protocol_errors_without_values(raw: bytes, ts: str, words: str) -> None:
    wanted = frozenset({PATIENT_NAME, PATIENT_ID, 0x00280010})
    with pytest.raises(DicomProtocolError) as caught:
        decode_identifier(raw, ts, wanted)
    message = str(caught.value)
    assert words in message
    assert SECRET.decode() not in message


def test_nesting_up_to_the_limit_is_fine() -> None:
    raw = _nested(MAX_NESTING) + _implicit(0x0010, 0x0020, 2, b"P1")
    assert decode_identifier(raw, IMPLICIT_VR_LE, frozenset({PATIENT_NAME, PATIENT_ID})) == {PATIENT_ID: "P1"}


def test_undefined_length_un_is_read_as_implicit_vr() -> None:
    """PS3.5 6.2.2: a sequence a server does not know is sent as UN, undefined length, implicit inside."""
    raw = (
        _explicit(0x0009, 0x1010, b"UN", 0xFFFFFFFF)
        + ITEM_START
        + PATIENT_NAME_SECRET
        + ITEM_END
        + SEQ_END
        + _explicit(0x0010, 0x0020, b"LO", 2, b"P1")
    )
    assert decode_identifier(raw, EXPLICIT_VR_LE, frozenset({PATIENT_NAME, PATIENT_ID})) == {PATIENT_ID: "P1"}


def test_encapsulated_style_defined_length_items_are_skipped() -> None:
    raw = (
        _explicit(0x7FE0, 0x0010, b"OB", 0xFFFFFFFF)
        + _implicit(0xFFFE, 0xE000, 0)
        + _implicit(0xFFFE, 0xE000, 10, SECRET + b" ")
        + SEQ_END
    )
    assert decode_identifier(raw, EXPLICIT_VR_LE, frozenset({PATIENT_NAME})) == {}


# Fuzzing: a dict or a DicomProtocolError, nothing else, and no value in any message

SEEDS = [
    _pydicom_bytes(_answer_dataset(undefined_lengths=u), implicit=i)
    for u in (True, False)
    for i in (True, False)
]


def _decode_or_protocol_error(raw: bytes, ts: str) -> None:
    try:
        result = decode_identifier(raw, ts, WANTED | {PATIENT_NAME})
    except DicomProtocolError as exc:
        assert "Doe" not in str(exc) and "Jane" not in str(exc) and "6789" not in str(exc)
    else:
        assert isinstance(result, dict)
        assert all(isinstance(v, str) for v in result.values())


def _mutate(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 6)):
        choice = rng.random()
        if choice < 0.4 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif choice < 0.6 and len(data) >= 4:
            at = rng.randrange(len(data) - 3)
            data[at : at + 4] = rng.choice(
                [b"\xff\xff\xff\xff", b"\xfe\xff\x00\xe0", b"\xfe\xff\xdd\xe0", b"SQ\x00\x00"]
            )
        elif choice < 0.8 and data:
            del data[rng.randrange(len(data)) :]
        else:
            at = rng.randrange(len(data) + 1)
            data[at:at] = rng.choice(SEEDS)[: rng.randrange(64)]
    return bytes(data)


def test_seeded_mutations_only_return_or_raise_protocol_errors() -> None:
    rng = random.Random(20240601)
    for n in range(20_000):
        seed = SEEDS[n % len(SEEDS)]
        _decode_or_protocol_error(_mutate(rng, seed), IMPLICIT_VR_LE if n % 2 else EXPLICIT_VR_LE)


def test_random_bytes_only_return_or_raise_protocol_errors() -> None:
    rng = random.Random(7)
    for n in range(5_000):
        raw = rng.randbytes(rng.randrange(200))
        _decode_or_protocol_error(raw, IMPLICIT_VR_LE if n % 2 else EXPLICIT_VR_LE)


try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # optional: the seeded loops above always run
    pass
else:

    @settings(max_examples=3_000, deadline=None)
    @given(
        seed=st.sampled_from(SEEDS),
        edits=st.lists(st.tuples(st.integers(0, 4096), st.binary(max_size=12)), max_size=6),
        cut=st.integers(0, 4096),
        explicit=st.booleans(),
    )
    def test_hypothesis_mutations_only_return_or_raise_protocol_errors(
        seed: bytes, edits: list[tuple[int, bytes]], cut: int, explicit: bool
    ) -> None:
        data = bytearray(seed)
        for at, blob in edits:
            at %= len(data) + 1
            data[at : at + len(blob)] = blob
        raw = bytes(data[: max(cut, len(data) // 2)])
        _decode_or_protocol_error(raw, EXPLICIT_VR_LE if explicit else IMPLICIT_VR_LE)
