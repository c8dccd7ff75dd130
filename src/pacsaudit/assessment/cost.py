"""An order-of-magnitude cost of an exposure: exposed patient records times a per-record figure.

Published breach-cost studies price a lost record, not an exposed one; pacsaudit uses their
healthcare per-record figure as a scale for what an open archive puts at stake, with a higher
figure for records carrying SSN-shaped identifiers (the ones identity theft feeds on). The
sources and the caveats are in `docs/assessment.md`; every report shows the formula.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DEFAULT_COST_MODEL",
    "CostEstimate",
    "CostModel",
    "cost_model",
    "estimate_cost",
    "order_of_magnitude",
]


class CostModel(BaseModel):
    """Per-record costs and where they come from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_record: float = Field(ge=0)
    """Cost per exposed patient record."""
    per_ssn_record: float = Field(ge=0)
    """Cost per exposed record whose identifier is shaped like an SSN (replaces `per_record` for those)."""
    currency: str = "USD"
    source: str


DEFAULT_COST_MODEL = CostModel(
    per_record=429.0,
    per_ssn_record=1355.0,
    currency="USD",
    source=(
        "per_record: IBM Security / Ponemon Institute, Cost of a Data Breach Report 2019, average "
        "cost per lost or stolen record in healthcare (USD 429); per_ssn_record: that figure plus "
        "the mean identity-theft loss per victim in the US Bureau of Justice Statistics' Victims of "
        "Identity Theft, 2018 (NCJ 256085: USD 15.1 billion over 16.3 million victims with a loss, "
        "about USD 926), as if every SSN-shaped record fed one theft: an upper-bound scale. "
        "See docs/assessment.md."
    ),
)
"""The defaults; both figures are settable (`cost_per_record`, `cost_per_ssn_record`)."""


def cost_model(per_record: float | None = None, per_ssn_record: float | None = None) -> CostModel:
    """The default model with the figures a user configured (`cost_per_record`,
    `cost_per_ssn_record` in the TOML file, `PACSAUDIT_COST_PER_RECORD`, ... or report options)."""
    if per_record is None and per_ssn_record is None:
        return DEFAULT_COST_MODEL
    changed = [
        f"{name} = {value:g} (configured)"
        for name, value in (("per_record", per_record), ("per_ssn_record", per_ssn_record))
        if value is not None
    ]
    return CostModel(
        per_record=DEFAULT_COST_MODEL.per_record if per_record is None else per_record,
        per_ssn_record=DEFAULT_COST_MODEL.per_ssn_record if per_ssn_record is None else per_ssn_record,
        currency=DEFAULT_COST_MODEL.currency,
        source="; ".join(changed) + "; otherwise the defaults: " + DEFAULT_COST_MODEL.source,
    )


class CostEstimate(BaseModel):
    """What `estimate_cost` worked out, with the formula as text so a reader can redo it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    patients: int
    ssn_shaped: int
    amount: float
    formula: str
    model: CostModel

    @property
    def rounded(self) -> str:
        """The amount as an order of magnitude, e.g. "~USD 4.3 million"."""
        return f"~{self.model.currency} {order_of_magnitude(self.amount)}"


def order_of_magnitude(amount: float) -> str:
    """Two significant figures and a word: no estimate is printed as more precise than it is.

    The amount is rounded before the word is picked, so 999,999 is "1 million", not "1000 thousand".
    """
    rounded = float(f"{amount:.2g}")
    for scale, word in ((1e12, "trillion"), (1e9, "billion"), (1e6, "million"), (1e3, "thousand")):
        if rounded >= scale:
            return f"{float(f'{rounded / scale:.2g}'):g} {word}"
    return f"{rounded:g}"


def estimate_cost(patients: int, ssn_shaped: int, model: CostModel = DEFAULT_COST_MODEL) -> CostEstimate:
    """(patients - ssn_shaped) x per_record + ssn_shaped x per_ssn_record.

    SSN-shaped identifiers are counted per patient, so they are a subset of the patients: a
    census that counted more shapes than patients (its patient count is a lower bound then)
    is taken to have at least as many patients as shapes.
    """
    ssn = max(0, ssn_shaped)
    patients = max(0, patients, ssn)
    plain = patients - ssn
    amount = plain * model.per_record + ssn * model.per_ssn_record
    formula = (
        f"({patients:,} patients - {ssn:,} SSN-shaped) x {model.currency} {model.per_record:,.2f}"
        f" + {ssn:,} SSN-shaped x {model.currency} {model.per_ssn_record:,.2f}"
        f" = {model.currency} {amount:,.0f}"
        f" (order of magnitude: ~{model.currency} {order_of_magnitude(amount)})"
    )
    return CostEstimate(patients=patients, ssn_shaped=ssn, amount=amount, formula=formula, model=model)
