"""Country names and shapes for reports, from the vendored Natural Earth 110m GeoJSON.

The same file draws the HTML report's world map, so a country the map shows has the name the
tables show. Loaded once, lazily: a report in Markdown or CSV that never names a country pays
nothing.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["WORLD_GEOJSON", "country_name", "world_geojson_text"]

WORLD_GEOJSON = "world-countries.geo.json"
"""In `pacsaudit/reports/assets/`: features keyed by `properties.iso_a2`."""


@cache
def world_geojson_text() -> str:
    return resources.files("pacsaudit.reports").joinpath("assets", WORLD_GEOJSON).read_text(encoding="utf-8")


@cache
def _names() -> dict[str, str]:
    world: dict[str, Any] = json.loads(world_geojson_text())
    names: dict[str, str] = {}
    for feature in world["features"]:
        properties = feature["properties"]
        if properties.get("iso_a2"):
            names[properties["iso_a2"]] = properties["name"]
    return names


def country_name(code: str | None) -> str | None:
    """The short English name of an ISO 3166-1 alpha-2 code, None when the map does not know it
    (small states absent at 1:110m scale, or no code)."""
    return None if not code else _names().get(code.upper())
