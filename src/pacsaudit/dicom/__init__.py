"""Every byte of the DICOM upper layer and DIMSE lives here; the rest of pacsaudit speaks in objects."""

from pacsaudit.dicom.association import (
    Association,
    AssociationAbortedError,
    AssociationReply,
    ContextNotAcceptedError,
    FindResponse,
    request_association,
)
from pacsaudit.dicom.identifier import decode_identifier, encode_identifier
from pacsaudit.dicom.pdu import AssociateRequest, DicomProtocolError, PresentationContext
from pacsaudit.dicom.reader import NotDicomError, PduLimits, PeerClosedError
from pacsaudit.dicom.transport import PduTransport

__all__ = [
    "AssociateRequest",
    "Association",
    "AssociationAbortedError",
    "AssociationReply",
    "ContextNotAcceptedError",
    "DicomProtocolError",
    "FindResponse",
    "NotDicomError",
    "PduLimits",
    "PduTransport",
    "PeerClosedError",
    "PresentationContext",
    "decode_identifier",
    "encode_identifier",
    "request_association",
]
