"""Every byte of the DICOM upper layer and DIMSE lives here; the rest of pacsaudit speaks in objects."""

from pacsaudit.dicom.association import (
    Association,
    AssociationAbortedError,
    AssociationReply,
    request_association,
)
from pacsaudit.dicom.pdu import AssociateRequest, DicomProtocolError, PresentationContext
from pacsaudit.dicom.reader import NotDicomError, PduLimits, PeerClosedError

__all__ = [
    "AssociateRequest",
    "Association",
    "AssociationAbortedError",
    "AssociationReply",
    "DicomProtocolError",
    "NotDicomError",
    "PduLimits",
    "PeerClosedError",
    "PresentationContext",
    "request_association",
]
