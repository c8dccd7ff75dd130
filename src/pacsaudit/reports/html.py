"""The census as one self-contained HTML file: tables, ECharts charts and a world map, offline.

Everything the page needs is inside it: CSS, the vendored `echarts.min.js` (Apache-2.0) and
the Natural Earth 110m world GeoJSON (public domain), so it opens from a file on a machine
without network and fetches nothing from a CDN. The tables are plain HTML (readable without
JavaScript, printable); the charts read the same numbers from a JSON island. Jinja2
autoescaping covers every text a server or an ASN database chose; the JSON islands escape
`<`, `>` and `&`, so no value can close a `<script>`.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from pacsaudit.reports.census_model import DELTA_NOTE, Census
from pacsaudit.reports.countries import world_geojson_text
from pacsaudit.reports.text import (
    SEED_COLUMNS,
    clean,
    cost_sentence,
    country_label,
    growth_delta,
    growth_percent,
    number,
    percent,
    signed,
)

__all__ = ["CHART_IDS", "render_html"]

CHART_IDS = ("chart-countries", "chart-map", "chart-modalities", "chart-years", "chart-growth")
"""The chart containers, in page order (`chart-growth` only with `--diff`)."""

_SHORT_LABELS = {
    "systems": "Systems",
    "studies": "Studies",
    "instances": "Images",
    "patients": "Patients",
    "ssn_shaped": "SSN-shaped",
}
GROWTH_LABELS = dict(zip(_SHORT_LABELS, SEED_COLUMNS, strict=True))

COUNTRY_CHART_LIMIT = 20
"""Countries in the bar chart (the tables list them all)."""


@cache
def _echarts() -> str:
    text = (
        resources.files("pacsaudit.reports").joinpath("assets", "echarts.min.js").read_text(encoding="utf-8")
    )
    if "</script" in text.lower() or "<!--" in text:  # would end the inline <script> early
        raise ValueError("the vendored echarts.min.js cannot be inlined")
    return text


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("pacsaudit.reports", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["number"] = number
    env.filters["signed"] = signed
    env.filters["percent"] = percent
    env.filters["clean"] = clean
    env.filters["country"] = country_label
    env.filters["growth_delta"] = growth_delta
    env.filters["growth_percent"] = growth_percent
    return env


def _script_json(value: Any) -> Markup:
    """JSON safe inside `<script type="application/json">`: no `</script>`, no `<!--`."""
    return Markup(_escape_json(json.dumps(value, ensure_ascii=False, separators=(",", ":"))))


def _escape_json(text: str) -> str:
    """`<`, `>` and `&` only occur inside JSON strings, where their escapes mean the same."""
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _code_string(text: str) -> str:
    """A modality as DICOM spells it (Code String: A-Z, 0-9, space, underscore; 16 characters);
    anything else (an imported result could hold anything) becomes `?`, since chart labels and
    tooltips are drawn by ECharts, outside the template's escaping."""
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in " _") else "?" for ch in text[:16])


def _chart_data(census: Census) -> dict[str, Any]:
    countries: list[dict[str, Any]] = [
        {"code": row.key, "name": row.name or row.key, "systems": row.systems, "studies": row.studies or 0}
        for row in census.by_country
    ]
    data: dict[str, Any] = {
        "countries": countries[:COUNTRY_CHART_LIMIT],
        "map": [c for c in countries if len(c["code"]) == 2],
        "modalities": [{"name": _code_string(m), "value": n} for m, n in census.modalities.items()],
        "years": [{"year": y, "studies": n} for y, n in census.study_years.per_year.items()],
        "growth": None,
    }
    if census.growth is not None:
        data["growth"] = {
            "earlier": "earlier"
            if census.growth.earlier_scan is None
            else f"scan {census.growth.earlier_scan}",
            "later": "now" if census.growth.later_scan is None else f"scan {census.growth.later_scan}",
            "metrics": [
                {
                    "metric": _SHORT_LABELS.get(row.metric, row.metric),
                    "earlier": row.earlier,
                    "later": row.later,
                }
                for row in census.growth.totals
            ],
        }
    return data


def render_html(census: Census) -> str:
    template = _environment().get_template("census.html.j2")
    return template.render(
        census=census,
        seed_columns=SEED_COLUMNS,
        growth_labels=GROWTH_LABELS,
        delta_note=DELTA_NOTE,
        cost_sentence=cost_sentence(census.cost),
        chart_data=_script_json(_chart_data(census)),
        world=Markup(_escape_json(world_geojson_text().strip())),
        echarts=Markup(_echarts()),
    )
