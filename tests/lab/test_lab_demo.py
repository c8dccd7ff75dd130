"""`pacsaudit lab` end to end: every lab member gets the verdict it was built to get."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from pacsaudit.lab.demo import run_lab
from pacsaudit.lab.fleet import LAB_FLEET


def test_lab_scan_gets_every_verdict_right(tmp_path: Path) -> None:
    out, report = tmp_path / "lab.jsonl", tmp_path / "lab-report.html"
    console = Console(record=True, width=160)
    assert run_lab(out, console=console, any_port=True, report=report) == 0, console.export_text()
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == len(LAB_FLEET)
    text = console.export_text()
    assert f"{len(LAB_FLEET)}/{len(LAB_FLEET)} verdicts as expected" in text
    statuses = {r["status"] for r in records}
    assert {"success", "io-timeout", "protocol-error", "not-dicom", "connection-closed"} <= statuses
    # The lab's census report: every archive once per host (Orthanc's DICOM and REST sides are one)
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "pacsaudit census" in page
    archives = {m.name: m.expected_studies for m in LAB_FLEET if m.expected_studies}
    once_per_host = archives["orthanc"] + archives["capped-archive"]
    assert archives["orthanc-web"] == archives["orthanc"]
    assert f"{once_per_host:,}" in page
    assert f"{once_per_host + archives['orthanc-web']:,}" not in page
