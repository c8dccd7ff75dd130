"""pacsaudit: an auditor for exposed medical-image archives (DICOM, DICOMweb, PACS viewers)."""

import os

# pydantic searches every installed distribution's entry points for plugins the first time a
# model is built: tens of milliseconds of each start, for plugins pacsaudit does not use.
# A user's own setting wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

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
