"""The cost estimate: formula, clamping, configurable figures, order-of-magnitude wording."""

from __future__ import annotations

import pytest

from pacsaudit.assessment import DEFAULT_COST_MODEL, CostModel, estimate_cost, order_of_magnitude
from pacsaudit.assessment.cost import cost_model


def test_formula_and_amount_with_the_defaults() -> None:
    estimate = estimate_cost(10_000, 1_000)
    per, per_ssn = DEFAULT_COST_MODEL.per_record, DEFAULT_COST_MODEL.per_ssn_record
    assert estimate.amount == pytest.approx(9_000 * per + 1_000 * per_ssn)
    assert "(10,000 patients - 1,000 SSN-shaped)" in estimate.formula
    assert f"{per:,.2f}" in estimate.formula and f"{per_ssn:,.2f}" in estimate.formula
    assert "order of magnitude" in estimate.formula
    assert estimate.model == DEFAULT_COST_MODEL
    assert "Ponemon" in DEFAULT_COST_MODEL.source


def test_ssn_shapes_are_a_subset_of_the_patients() -> None:
    clamped = estimate_cost(5, 9, CostModel(per_record=1, per_ssn_record=10, source="test"))
    assert (clamped.patients, clamped.ssn_shaped, clamped.amount) == (9, 9, 90)
    assert estimate_cost(0, 0).amount == 0
    assert estimate_cost(-3, -1).amount == 0


def test_a_configured_model() -> None:
    model = cost_model(per_record=100.0, per_ssn_record=250.0)
    assert (model.per_record, model.per_ssn_record) == (100.0, 250.0)
    assert "configured" in model.source
    assert estimate_cost(10, 2, model).amount == 8 * 100 + 2 * 250
    assert cost_model() == DEFAULT_COST_MODEL
    with pytest.raises(ValueError):
        cost_model(per_record=-1.0)


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (0, "0"),
        (512, "510"),
        (4_290, "4.3 thousand"),
        (4_290_000, "4.3 million"),
        (1.2e9, "1.2 billion"),
        # rounded before the word is picked: never "1000 thousand"
        (999_499, "1 million"),
        (999_999, "1 million"),
        (994_999, "990 thousand"),
        (999_999_999, "1 billion"),
        (999.9, "1 thousand"),
    ],
)
def test_order_of_magnitude(amount: float, text: str) -> None:
    assert order_of_magnitude(amount) == text
    assert estimate_cost(1, 0, CostModel(per_record=amount, per_ssn_record=0, source="t")).rounded.endswith(
        text
    )
