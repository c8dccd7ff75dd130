"""Scan history: every scan kept in SQLite (default) or PostgreSQL, chosen by URL.

`ScanStore` stores batches of results as the engine produces them, streams them back, and
imports/exports JSON Lines; `LowWaterMark` tells the engine which stream position a resume
may restart from. The schema is managed by Alembic (`migrations/`), applied on `open`.

The names that need SQLAlchemy load on first use, so a scan without history never pays for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pacsaudit.lazy import lazy_exports
from pacsaudit.storage.progress import LowWaterMark
from pacsaudit.storage.states import DEFAULT_URL, ScanState, StorageError

if TYPE_CHECKING:
    from pacsaudit.storage.store import BadLine, ImportSummary, ScanRecord, ScanStore

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

_LAZY = {
    "BadLine": "pacsaudit.storage.store",
    "ImportSummary": "pacsaudit.storage.store",
    "ScanRecord": "pacsaudit.storage.store",
    "ScanStore": "pacsaudit.storage.store",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
