import os
import sys
from pathlib import Path

import pytest

# Shared helpers (tests/scanning.py) import as top-level modules from any test folder.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True, scope="session")
def _scan_history_in_a_temp_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """`pacsaudit scan` keeps history in ./pacsaudit.db by default: never in the repository."""
    if "PACSAUDIT_DB" not in os.environ:
        db = tmp_path_factory.mktemp("history") / "pacsaudit.db"
        os.environ["PACSAUDIT_DB"] = f"sqlite:///{db}"
