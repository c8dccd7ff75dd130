"""What a scan's history needs without a database driver: the default URL and the scan states.

Kept apart from `store` so that a scan without history (`--no-db`) never imports SQLAlchemy.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DEFAULT_URL", "ScanState", "StorageError"]

DEFAULT_URL = "sqlite:///pacsaudit.db"
"""History in ./pacsaudit.db unless `--db` or PACSAUDIT_DB says otherwise."""


class ScanState(StrEnum):
    RUNNING = "running"
    """Started and not ended; also what a scan killed with -9 still says (resumable)."""
    FINISHED = "finished"
    INTERRUPTED = "interrupted"
    """Stopped on purpose (Ctrl-C): resumable."""
    FAILED = "failed"
    """Stopped by an error: resumable once the cause is fixed."""


class StorageError(RuntimeError):
    """The database cannot do what was asked: bad URL, unknown scan, wrong state, newer schema."""
