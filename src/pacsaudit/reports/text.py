"""Words and numbers shared by the census renderers; text a server chose is never trusted.

Product and version strings come from the peer (implementation version names, HTTP headers),
owner names from the user's ASN database: every renderer cleans them (no control characters,
at most `MAX_TEXT` characters) and then escapes them for its medium.
"""

from __future__ import annotations

import re

from pacsaudit.reports.census_model import ArchiveRow, CensusRow, CostSummary, GrowthRow

__all__ = [
    "MAX_TEXT",
    "SEED_COLUMNS",
    "clean",
    "cost_sentence",
    "country_label",
    "csv_cell",
    "endpoint",
    "growth_delta",
    "growth_percent",
    "md",
    "md_inert",
    "number",
    "percent",
    "product_label",
    "signed",
]

MAX_TEXT = 64

SEED_COLUMNS = (
    "Systems allowing unprotected DICOM access",
    "Accessible studies",
    "Related images",
    "Patients",
    "SSN-shaped identifiers",
)
"""The seed's census columns, in its order (its "images" are DICOM instances)."""


def clean(text: str, limit: int | None = MAX_TEXT) -> str:
    """No control characters; cut to `limit` characters (None: pacsaudit's own words, never cut)."""
    cleaned = "".join(ch if ch.isprintable() else "\ufffd" for ch in text)
    return cleaned if limit is None or len(cleaned) <= limit else cleaned[: limit - 1] + "…"


_MD_ESCAPE = str.maketrans({ch: "\\" + ch for ch in "\\`*_[]<>|~#"} | {"&": "&amp;"})


def md(text: str, limit: int | None = MAX_TEXT) -> str:
    """Cleaned and escaped for a Markdown table cell: it cannot add cells, links or headings."""
    return clean(text, limit).translate(_MD_ESCAPE)


_MD_INERT = str.maketrans({ch: "\\" + ch for ch in "\\`*_[]()!<>|~#{}"} | {"&": "&amp;"})
_LINK_LIKE = re.compile(r"(?i)(?<=[a-z0-9])://|\bwww\.|@")
_DEFANGED = {"://": "[:]//", "www.": "www[.]", "@": "[@]"}


def md_inert(text: str, limit: int | None = MAX_TEXT) -> str:
    """Cleaned and escaped for any place in a Markdown line (table cell, list item, heading, bold):
    no cell, link, image, HTML, entity or emphasis can start in it, and link-like text is defanged
    the way CERTs write it (`https[:]//`, `www[.]`, `[@]`) so no renderer's autolinking makes it
    live. The escaper for text a peer or a database chose (notices, DefectDojo descriptions)."""
    escaped = clean(text, limit).translate(_MD_INERT)
    return _LINK_LIKE.sub(lambda m: _DEFANGED[m.group().lower()], escaped)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text: str | None, limit: int | None = MAX_TEXT) -> str:
    """Cleaned (cut to `limit`, as `clean`), and defused for spreadsheets: a cell that would start a
    formula gets a `'`."""
    if text is None:
        return ""
    cleaned = clean(text, limit)
    return "'" + cleaned if cleaned.startswith(_FORMULA_START) else cleaned


def number(value: int | None, complete: bool = True) -> str:
    if value is None:
        return "—"
    return f"{value:,}" if complete else f"≥ {value:,}"


def signed(value: int | None) -> str:
    return "—" if value is None else f"{value:+,}"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1f} %"


def endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def country_label(row: CensusRow | ArchiveRow) -> str:
    """`DE (Germany)`, `(private)`, or the bare code when the map has no name for it."""
    if isinstance(row, ArchiveRow):
        return row.country or "(unknown)"
    return f"{row.key} ({row.name})" if row.name else row.key


def product_label(product: str | None, version: str | None) -> str:
    return " ".join(clean(part) for part in (product, version) if part) or "unknown"


def cost_sentence(cost: CostSummary) -> str:
    """The estimate as a sentence: an order of magnitude first, then the formula to redo it."""
    if cost.amount is None:
        return f"Estimated cost of the identity theft this exposure enables: {cost.rounded}: {cost.formula}."
    bound = "at least " if cost.lower_bound else ""
    return (
        f"Estimated cost of the identity theft this exposure enables: {bound}{cost.rounded}, "
        f"from {cost.formula}. An order of magnitude from published breach-cost figures, not a prediction."
    )


_DELTA_MARKS = {"exact": "", "at-least": "≥ ", "at-most": "≤ ", "approximate": "≈ "}


def growth_delta(row: GrowthRow) -> str:
    """Δ of a growth row, marked `≥`, `≤` or `≈` when a side is a lower bound."""
    return "—" if row.delta is None else _DELTA_MARKS[row.delta_kind] + signed(row.delta)


def growth_percent(row: GrowthRow) -> str:
    """Δ % of a growth row: marked like `growth_delta`; `n/a` when both sides are lower bounds."""
    if row.delta_kind == "approximate" and row.delta is not None:
        return "n/a"
    return "—" if row.delta_pct is None else _DELTA_MARKS[row.delta_kind] + percent(row.delta_pct)
