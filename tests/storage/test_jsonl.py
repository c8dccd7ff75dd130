"""Import and export of the JSON Lines that `pacsaudit scan -o` writes, on both backends."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

import pacsaudit.storage.store as store_module
from pacsaudit.storage import ScanState, ScanStore
from pacsaudit.storage.store import BAD_LINES_KEPT

from .synthetic import synthetic_result


def _lines(count: int) -> list[str]:
    results = sorted((synthetic_result(i) for i in range(count)), key=lambda r: (r.ip, r.port))
    return [result.model_dump_json() for result in results]


def test_import_then_export_gives_the_same_bytes(store: ScanStore, tmp_path: Path) -> None:
    # Given a scan's JSON Lines, as the scanner writes them (sorted by ip, port)
    source = tmp_path / "results.jsonl"
    source.write_text("".join(line + "\n" for line in _lines(2_500)), encoding="utf-8")
    # When it is imported and exported again
    summary = store.import_jsonl(source)
    out = io.StringIO()
    written = store.export_jsonl(summary.scan_id, out)
    # Then the export is byte for byte the input
    assert (summary.imported, summary.stored, summary.bad, summary.replaced) == (2_500, 2_500, 0, 0)
    assert written == 2_500
    assert out.getvalue().encode() == source.read_bytes()
    record = store.scan(summary.scan_id)
    assert record is not None
    assert record.state is ScanState.FINISHED
    assert record.arguments == {"imported_from": str(source)}
    assert record.endpoints_done == 2_500
    assert record.dicom_found == 1_250


def test_import_normalises_through_the_model(store: ScanStore) -> None:
    """Another tool's spacing and key order come out as the model writes them."""
    canonical = _lines(20)
    loose = [
        json.dumps(dict(reversed(json.loads(line).items())), indent=None, separators=(" , ", " : "))
        for line in canonical
    ]
    summary = store.import_jsonl(io.StringIO("\n".join(loose) + "\n"), arguments={"sensor": "b"})
    out = io.StringIO()
    store.export_jsonl(summary.scan_id, out)
    assert out.getvalue() == "".join(line + "\n" for line in canonical)
    record = store.scan(summary.scan_id)
    assert record is not None and record.arguments == {"sensor": "b"}


def test_bad_lines_are_reported_not_fatal(store: ScanStore) -> None:
    good = _lines(3)
    patient = json.loads(good[0]) | {"patient_name": "DOE^JANE"}
    wrong_type = json.loads(good[1]) | {"port": "DOE^JANE"}
    lines = [
        good[0].encode(),
        b"not json at all DOE^JANE",
        b"",
        json.dumps(patient).encode(),
        b"   ",
        good[1].encode(),
        json.dumps(wrong_type).encode(),
        b'{"ip": "127.0.0.9", "port": 104, "status": "success", "elapsed_ms": 1.0, "timestamp": "\xff\xfe"}',
        good[2].encode(),
        b'{"ip": "127.0.0.9"',
    ]
    summary = store.import_jsonl(io.BytesIO(b"\n".join(lines) + b"\n"))
    assert (summary.imported, summary.bad) == (3, 5)
    assert [bad.line for bad in summary.bad_lines] == [2, 4, 7, 8, 10]
    assert "patient_name" in summary.bad_lines[1].error
    assert "port" in summary.bad_lines[2].error
    # the reasons never quote the line: it could hold anything
    assert not any("DOE" in bad.error for bad in summary.bad_lines)
    assert len(list(store.observations(summary.scan_id))) == 3
    record = store.scan(summary.scan_id)
    assert record is not None and record.state is ScanState.FINISHED


def test_only_the_first_bad_lines_are_kept(store: ScanStore) -> None:
    text = "{}\n" * (BAD_LINES_KEPT + 50)
    summary = store.import_jsonl(io.StringIO(text))
    assert summary.bad == BAD_LINES_KEPT + 50
    assert len(summary.bad_lines) == BAD_LINES_KEPT
    # nothing good at all: the scan says it failed
    record = store.scan(summary.scan_id)
    assert record is not None and record.state is ScanState.FAILED


def test_an_empty_file_is_an_empty_finished_scan(store: ScanStore) -> None:
    summary = store.import_jsonl(io.StringIO(""))
    assert (summary.imported, summary.bad) == (0, 0)
    record = store.scan(summary.scan_id)
    assert record is not None and record.state is ScanState.FINISHED


def test_an_imported_scan_spans_its_results_timestamps(store: ScanStore) -> None:
    lines = [
        synthetic_result(0, timestamp="2026-03-01T10:00:00.000Z").model_dump_json(),
        synthetic_result(1, timestamp="2026-03-01T09:00:00.000Z").model_dump_json(),
        synthetic_result(2, timestamp="2026-03-01T11:30:00.000Z").model_dump_json(),
        synthetic_result(3, timestamp="sometime").model_dump_json(),
    ]
    summary = store.import_jsonl(io.StringIO("\n".join(lines)))
    record = store.scan(summary.scan_id)
    assert record is not None
    assert record.started_at == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    assert record.finished_at == datetime(2026, 3, 1, 11, 30, tzinfo=UTC)


def test_a_repeated_endpoint_in_a_file_keeps_the_last_line(store: ScanStore) -> None:
    first = synthetic_result(0)
    last = first.model_copy(update={"elapsed_ms": 1234.5})
    lines = [first.model_dump_json(), synthetic_result(1).model_dump_json(), last.model_dump_json()]
    summary = store.import_jsonl(io.StringIO("\n".join(lines)))
    assert (summary.imported, summary.replaced, summary.stored) == (3, 1, 2)
    assert last in list(store.observations(summary.scan_id))


def test_duplicates_across_import_batches_are_replaced(
    store: ScanStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "IMPORT_BATCH", 2)
    first = synthetic_result(0)
    last = first.model_copy(update={"elapsed_ms": 1234.5})
    lines = [first.model_dump_json(), synthetic_result(1).model_dump_json(), last.model_dump_json()]
    summary = store.import_jsonl(io.StringIO("\n".join(lines)))
    assert (summary.imported, summary.replaced, summary.stored) == (3, 1, 2)
    assert next(iter(store.observations(summary.scan_id))) == last
