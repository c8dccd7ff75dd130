"""Running jobs: one endpoint, a local stream of them, or a chunk for a distributed worker."""

from pacsaudit.engine.chunk import scan_chunk
from pacsaudit.engine.endpoint import is_open, scan_endpoint, scan_plain_dicom
from pacsaudit.engine.local import ScanTotals, run_scan
from pacsaudit.engine.runner import run

__all__ = ["ScanTotals", "is_open", "run", "run_scan", "scan_chunk", "scan_endpoint", "scan_plain_dicom"]
