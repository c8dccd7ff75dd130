"""The result model is the public contract: its checked-in JSON Schema, its keys, its exports."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
from pydantic import ValidationError

import pacsaudit
from pacsaudit.model import DicomBlock, EndpointResult, Status

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT.parent / "shared" / "tools" / "check-contract.py"


def _record() -> EndpointResult:
    return EndpointResult(
        ip="127.0.0.1", port=104, status=Status.SUCCESS, elapsed_ms=1.0, timestamp="t", dicom=DicomBlock()
    )


def test_checked_in_schema_matches_the_models() -> None:
    checked_in = json.loads((ROOT / "docs" / "result.schema.json").read_text())
    assert checked_in == EndpointResult.model_json_schema(), "run: pacsaudit schema > docs/result.schema.json"


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        DicomBlock.model_validate({"detected": True, "patient_name": "x"})


def test_null_contract_keys_are_kept_in_output() -> None:
    line = json.loads(_record().model_dump_json())
    for key in ("reject", "open_to_any_ae", "called_ae_check", "implementation_class_uid", "product", "echo"):
        assert key in line["dicom"]
        assert line["dicom"][key] is None


def test_status_vocabulary_is_closed_and_kebab_case() -> None:
    values = {s.value for s in Status}
    assert values >= {"success", "connection-refused", "io-timeout", "protocol-error", "not-dicom"}
    assert all(v == v.lower() and "_" not in v for v in values)


def test_contract_checker_accepts_a_model_line(tmp_path: Path) -> None:
    assert CONTRACT.exists(), "../shared/tools/check-contract.py must sit beside the repository"
    out = tmp_path / "r.jsonl"
    out.write_text(_record().model_dump_json() + "\n")
    done = subprocess.run([sys.executable, str(CONTRACT), "scan", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_public_api_is_exactly_all() -> None:
    """Everything public at the top is in `__all__` (subpackages aside, however many are imported)."""
    exported = {
        name
        for name in dir(pacsaudit)
        if not name.startswith("_") and not isinstance(getattr(pacsaudit, name), types.ModuleType)
    }
    assert exported == set(pacsaudit.__all__) - {"__version__"}
