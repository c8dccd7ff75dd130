"""Numbers of the DICOM upper layer (PS3.8) and the UIDs pacsaudit proposes, with their words."""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "APPLICATION_CONTEXT",
    "CR_IMAGE_STORAGE",
    "CT_IMAGE_STORAGE",
    "DEFLATED_EXPLICIT_VR_LE",
    "EXPLICIT_VR_BE",
    "EXPLICIT_VR_LE",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "IMPLICIT_VR_LE",
    "MODALITY_WORKLIST_FIND",
    "MR_IMAGE_STORAGE",
    "PATIENT_ROOT_FIND",
    "PATIENT_ROOT_GET",
    "PATIENT_ROOT_MOVE",
    "SECONDARY_CAPTURE_IMAGE_STORAGE",
    "STUDY_ROOT_FIND",
    "STUDY_ROOT_GET",
    "STUDY_ROOT_MOVE",
    "VERIFICATION",
    "PduType",
    "abort_words",
    "reject_words",
]

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_VR_LE = "1.2.840.10008.1.2"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
# Never proposed by pacsaudit; named so that a peer that picks one anyway gets a clear error.
EXPLICIT_VR_BE = "1.2.840.10008.1.2.2"
DEFLATED_EXPLICIT_VR_LE = "1.2.840.10008.1.2.1.99"

# Query/Retrieve information models (PS3.4 C.6): FIND is what the census uses; MOVE and GET
# are only ever proposed, never requested, so that their acceptance can be recorded.
PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
PATIENT_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
PATIENT_ROOT_GET = "1.2.840.10008.5.1.4.1.2.1.3"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"

# Storage SOP classes (PS3.4 B.5) proposed to learn whether a stranger may store; never sent.
CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
SECONDARY_CAPTURE_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"

# pacsaudit's own implementation identity: a UUID-derived UID (PS3.5 B.2) so that owners
# who see it in their logs can look the tool up.
IMPLEMENTATION_CLASS_UID = "2.25.118012746391856215419183452366457137741"
IMPLEMENTATION_VERSION_NAME = "PACSAUDIT_010"


class PduType(IntEnum):
    ASSOCIATE_RQ = 0x01
    ASSOCIATE_AC = 0x02
    ASSOCIATE_RJ = 0x03
    P_DATA_TF = 0x04
    RELEASE_RQ = 0x05
    RELEASE_RP = 0x06
    ABORT = 0x07


_REJECT_RESULT = {1: "rejected-permanent", 2: "rejected-transient"}
_REJECT_SOURCE = {
    1: "service-user",
    2: "service-provider (ACSE)",
    3: "service-provider (presentation)",
}
_REJECT_REASON = {
    1: {
        1: "no-reason-given",
        2: "application-context-name-not-supported",
        3: "calling-AE-title-not-recognized",
        7: "called-AE-title-not-recognized",
    },
    2: {1: "no-reason-given", 2: "protocol-version-not-supported"},
    3: {1: "temporary-congestion", 2: "local-limit-exceeded"},
}
_ABORT_SOURCE = {0: "service-user", 1: "reserved", 2: "service-provider"}
_ABORT_REASON = {
    0: "reason-not-specified",
    1: "unrecognized-PDU",
    2: "unexpected-PDU",
    4: "unrecognized-PDU-parameter",
    5: "unexpected-PDU-parameter",
    6: "invalid-PDU-parameter-value",
}


def reject_words(result: int, source: int, reason: int) -> tuple[str, str, str]:
    """Words for an A-ASSOCIATE-RJ's (result, source, reason), per PS3.8 Table 9-21."""
    return (
        _REJECT_RESULT.get(result, f"unknown-result-{result}"),
        _REJECT_SOURCE.get(source, f"unknown-source-{source}"),
        _REJECT_REASON.get(source, {}).get(reason, f"reserved-reason-{reason}"),
    )


def abort_words(source: int, reason: int) -> tuple[str, str]:
    """Words for an A-ABORT's (source, reason); the reason only means something from the provider."""
    reason_text = _ABORT_REASON.get(reason, f"reserved-reason-{reason}") if source == 2 else "not-significant"
    return _ABORT_SOURCE.get(source, f"unknown-source-{source}"), reason_text
