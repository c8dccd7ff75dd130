"""pacsaudit: an auditor for exposed medical-image archives (DICOM, DICOMweb, PACS viewers).

The names below load on first use: `import pacsaudit` builds no pydantic model, so the CLI can
set up pydantic (`pacsaudit.cli`) before any model exists.
"""

import typing as _typing

from pacsaudit.lazy import lazy_exports as _lazy_exports

if _typing.TYPE_CHECKING:
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

_LAZY = {
    **dict.fromkeys(("ScanSettings", "load_settings"), "pacsaudit.config"),
    **dict.fromkeys(("DicomBlock", "EndpointResult", "RejectInfo", "Status"), "pacsaudit.model"),
}

__getattr__, __dir__ = _lazy_exports(__name__, _LAZY, globals())
