"""The census as JSON: the `Census` model dumped, every key present (null when unknown)."""

from __future__ import annotations

from pacsaudit.reports.census_model import Census

__all__ = ["render_census_json"]


def render_census_json(census: Census) -> str:
    return census.model_dump_json(indent=2) + "\n"
