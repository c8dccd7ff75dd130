import sys
from pathlib import Path

# Shared helpers (tests/scanning.py) import as top-level modules from any test folder.
sys.path.insert(0, str(Path(__file__).parent))
