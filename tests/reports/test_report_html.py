"""The HTML report: its structure as parsed, then the real thing opened in headless Chromium.

Chromium loads the file from disk with every network path closed (see `chromium.py`): the
page must render its charts and the world map from what it carries, log no error, request
nothing but itself, and leave a screenshot in `test-artifacts/` for a human to look at.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pacsaudit.assessment import Attributor
from pacsaudit.reports.census import build_census
from pacsaudit.reports.census_model import PRIVACY_NOTE
from pacsaudit.reports.html import CHART_IDS, render_html
from pacsaudit.reports.writer import ReportFormat, write_report
from pacsaudit.storage import ScanStore

from .builders import system
from .chromium import CHROMIUM, open_page
from .report_data import HOSTILE_PRODUCT, make_store

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


class _Page(HTMLParser):
    """Ids, external references, scripts and the visible text of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.external: list[str] = []
        self.scripts: dict[str, str] = {}
        self.inline_scripts: list[str] = []
        self.text: list[str] = []
        self._script: tuple[str | None, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.add(str(attributes["id"]))
        for name in ("src", "href"):
            if attributes.get(name):
                self.external.append(f"{tag} {name}={attributes[name]}")
        if tag == "link":
            self.external.append(f"link {attributes}")
        if tag == "script":
            self._script = (attributes.get("id"), attributes.get("type"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is None:
            self.text.append(data)
        elif self._script[0]:
            self.scripts[self._script[0]] = self.scripts.get(self._script[0], "") + data
        else:
            self.inline_scripts.append(data)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScanStore]:
    fixed = make_store(tmp_path_factory.mktemp("report") / "history.db")
    yield fixed
    fixed.close()


def _html(store: ScanStore, **options: object) -> str:
    out = io.StringIO()
    with Attributor() as attributor:
        write_report(store, 2, out, ReportFormat.html, attributor=attributor, **options)  # type: ignore[arg-type]
    return out.getvalue()


@pytest.fixture(scope="module")
def report(store: ScanStore) -> str:
    return _html(store, diff_against=1)


def test_the_page_holds_every_section_and_chart(report: str) -> None:
    page = _Page()
    page.feed(report)
    tables = {"table-countries", "table-owners", "table-products", "table-worst", "table-findings"}
    assert tables | {"table-growth", "table-growth-countries"} <= page.ids
    assert set(CHART_IDS) <= page.ids
    assert {"privacy", "cost", "census-data", "world-geojson"} <= page.ids
    text = " ".join(page.text)
    assert PRIVACY_NOTE in text
    assert "x USD 429.00" in text, "the cost formula is shown"
    assert "Germany" in text and "≥ 1,318" in text


def test_the_page_fetches_nothing(report: str) -> None:
    page = _Page()
    page.feed(report)
    assert page.external == [], "no src, href or link: everything is inline"
    assert "http://" not in "".join(page.inline_scripts[-1:]) and "https://" not in page.inline_scripts[-1]
    assert len(page.inline_scripts) == 2 and "echarts" in page.inline_scripts[0][:20000].lower()


def test_the_json_islands_parse_and_carry_the_map(report: str) -> None:
    page = _Page()
    page.feed(report)
    data = json.loads(page.scripts["census-data"])
    assert [c["code"] for c in data["map"]] == ["DE", "NL", "FR", "US"]
    assert data["growth"]["earlier"] == "scan 1"
    world = json.loads(page.scripts["world-geojson"])
    codes = {f["properties"]["iso_a2"] for f in world["features"]}
    assert {"DE", "NL", "FR", "US", "BR", "JP", "AU", "ZA"} <= codes and len(codes) > 170


def test_hostile_server_text_is_escaped(report: str) -> None:
    assert "<script>alert(1)</script>" not in report
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report
    page = _Page()
    page.feed(report)
    assert HOSTILE_PRODUCT in " ".join(page.text), "shown as text, as the server sent it"
    assert page.external == [], "its [x](http://...) became no link"


def test_without_a_diff_there_is_no_growth_section(store: ScanStore) -> None:
    page = _Page()
    page.feed(_html(store))
    assert "chart-growth" not in page.ids and "table-growth" not in page.ids
    assert json.loads(page.scripts["census-data"])["growth"] is None


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("REQUIRE_PACS_SERVERS"), reason="no chromium")
def test_chromium_renders_charts_and_map_without_errors(report: str, tmp_path: Path) -> None:
    # Given the report as a file, as a user would open it
    html = tmp_path / "census.html"
    html.write_text(report, encoding="utf-8")
    # When headless Chromium opens it with no network
    seen = open_page(
        html,
        {
            "rendered": "document.body.getAttribute('data-charts')",
            "canvases": "Array.from(document.querySelectorAll('.chart canvas')).filter("
            "c => c.width > 100 && c.height > 100).length",
            "map_series": "echarts.getInstanceByDom(document.getElementById('chart-map'))"
            ".getOption().series[0].type",
            "map_regions": "echarts.getMap('world').geoJSON.features.length",
            "coloured": "echarts.getInstanceByDom(document.getElementById('chart-map'))"
            ".getOption().series[0].data.filter(d => d.value > 0).map(d => d.name).join(' ')",
            "country_bars": "echarts.getInstanceByDom(document.getElementById('chart-countries'))"
            ".getOption().series[0].data.length",
            "rows": "document.querySelectorAll('#table-countries tbody tr').length",
            "painted": "(() => { const c = document.querySelector('#chart-map canvas');"
            " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            " let n = 0; for (let i = 0; i < d.length; i += 4) { if (d[i + 3] > 0) n++; } return n; })()",
        },
        profile=tmp_path / "profile",
    )
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "census-report.png").write_bytes(seen.screenshot)
    shutil.copy(html, ARTIFACTS / "census-report.html")
    # Then it rendered everything, quietly, from itself alone
    assert seen.console_errors == [] and seen.exceptions == [] and seen.log_errors == []
    assert seen.requests == [html.resolve().as_uri()], "the page requested nothing but itself"
    assert seen.values["rendered"] == "chart-countries chart-modalities chart-map chart-years chart-growth"
    assert seen.values["canvases"] == 5
    assert seen.values["map_series"] == "map" and seen.values["map_regions"] > 170
    assert seen.values["coloured"] == "DE NL FR US"
    assert seen.values["country_bars"] == 5 and seen.values["rows"] == 6
    assert seen.values["painted"] > 10_000, "the map canvas has pixels drawn on it"
    assert seen.screenshot.startswith(b"\x89PNG") and len(seen.screenshot) > 50_000


def test_chart_labels_from_results_are_reduced_to_code_strings() -> None:
    """Charts and their tooltips are drawn by ECharts, outside the template's escaping."""
    archive = system("192.0.2.1", studies=3, patients=1)
    assert archive.dicom is not None
    hostile = archive.model_copy(
        update={"dicom": archive.dicom.model_copy(update={"modalities": {"<img src=x onerror=alert(1)>": 3}})}
    )
    page = _Page()
    page.feed(render_html(build_census([hostile])))
    (label,) = json.loads(page.scripts["census-data"])["modalities"]
    assert label == {"name": "?img src?x onerr", "value": 3}
