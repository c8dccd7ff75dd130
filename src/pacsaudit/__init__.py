"""pacsaudit: an auditor for exposed medical-image archives (DICOM, DICOMweb, PACS viewers)."""

from pacsaudit.config import ScanSettings, load_settings
from pacsaudit.model import DicomBlock, EndpointResult, RejectInfo, Status

__version__ = "0.1.0"

__all__ = [
    "DicomBlock",
    "EndpointResult",
    "RejectInfo",
    "ScanSettings",
    "Status",
    "__version__",
    "load_settings",
]
