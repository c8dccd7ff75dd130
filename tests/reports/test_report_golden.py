"""Golden reports: the fixed stored scans of `report_data` rendered, compared byte for byte.

A change to the census, a renderer, a finding rule or the cost model shows here as a diff to
review. When the change is intended, regenerate and review the golden files' diff:

    PACSAUDIT_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/reports/test_report_golden.py
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pacsaudit.assessment import Attributor
from pacsaudit.reports.csv_report import CsvTable
from pacsaudit.reports.writer import ReportFormat, write_report
from pacsaudit.storage import ScanStore
from scanning import missing_software
from storage.conftest import PG_HOST, PG_PORT, PostgresDatabases, _reachable

from .report_data import HOSTILE_PRODUCT, make_store

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("PACSAUDIT_UPDATE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScanStore]:
    fixed = make_store(tmp_path_factory.mktemp("report") / "history.db")
    yield fixed
    fixed.close()


def _report(store: ScanStore, report_format: ReportFormat, **options: object) -> str:
    out = io.StringIO()
    with Attributor() as attributor:
        write_report(store, 2, out, report_format, attributor=attributor, **options)  # type: ignore[arg-type]
    return out.getvalue()


def _matches_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
    assert path.exists(), f"no golden file {name}: run with PACSAUDIT_UPDATE_GOLDEN=1 to create it"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{name} differs from its golden file (see the module docstring to regenerate)"


def test_markdown_with_growth_is_golden(store: ScanStore) -> None:
    _matches_golden("census-scan2-diff1.md", _report(store, ReportFormat.md, diff_against=1))


def test_markdown_without_growth_is_golden(store: ScanStore) -> None:
    text = _report(store, ReportFormat.md)
    _matches_golden("census-scan2.md", text)
    assert "## Growth" not in text


def test_json_is_golden_and_is_the_census_model(store: ScanStore) -> None:
    text = _report(store, ReportFormat.json, diff_against=1)
    _matches_golden("census-scan2-diff1.json", text)
    doc = json.loads(text)
    assert set(doc) >= {"scan", "totals", "by_country", "by_owner", "by_product", "cost", "growth", "privacy"}


@pytest.mark.parametrize("table", [t for t in CsvTable])
def test_csv_tables_are_golden(store: ScanStore, table: CsvTable) -> None:
    text = _report(store, ReportFormat.csv, table=table)
    _matches_golden(f"{table.value}.csv", text)
    assert text.startswith("# This report holds counts"), "the privacy line opens every CSV"
    assert "\n# Estimated cost" in text and " x USD " in text, "the cost formula is in every CSV"


def test_postgresql_makes_the_same_reports() -> None:
    """The census streams the store's order, (ip as text, port), the same on both backends."""
    if not _reachable():
        missing_software(f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT}")
    databases = PostgresDatabases()
    try:
        with make_store(databases.create()) as postgres:
            assert _report(postgres, ReportFormat.md) == (GOLDEN / "census-scan2.md").read_text()
            json_report = _report(postgres, ReportFormat.json, diff_against=1)
            assert json_report == (GOLDEN / "census-scan2-diff1.json").read_text()
    finally:
        databases.drop_all()


def test_the_golden_files_hold_the_hostile_text_only_defused() -> None:
    """Read back what was just compared: the raw markup and formula never appear as such."""
    markdown = (GOLDEN / "census-scan2.md").read_text(encoding="utf-8")
    assert "<script>" not in markdown and "\\<script\\>" in markdown
    assert "Evil\\|PACS" in markdown, "a | in a product cannot add a table cell"
    products = (GOLDEN / "products.csv").read_text(encoding="utf-8")
    assert "'=HYPERLINK" in products and ",=HYPERLINK" not in products
    assert HOSTILE_PRODUCT.split("|")[0] in products
