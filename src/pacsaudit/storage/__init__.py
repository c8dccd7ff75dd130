"""Scan history: every scan kept in SQLite (default) or PostgreSQL, chosen by URL.

`ScanStore` stores batches of results as the engine produces them, streams them back, and
imports/exports JSON Lines; `LowWaterMark` tells the engine which stream position a resume
may restart from. The schema is managed by Alembic (`migrations/`), applied on `open`.
"""

from pacsaudit.storage.backends import StorageError
from pacsaudit.storage.progress import LowWaterMark
from pacsaudit.storage.store import DEFAULT_URL, BadLine, ImportSummary, ScanRecord, ScanState, ScanStore

__all__ = [
    "DEFAULT_URL",
    "BadLine",
    "ImportSummary",
    "LowWaterMark",
    "ScanRecord",
    "ScanState",
    "ScanStore",
    "StorageError",
]
