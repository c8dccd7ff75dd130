"""`findings_for` and `risk_level`: ordering, the worst severity, frozen strict findings."""

from __future__ import annotations

import pytest

from pacsaudit.assessment import SEVERITY_ORDER, Finding, findings_for, risk_level

from .results import open_archive


def test_findings_come_most_severe_first_and_risk_is_the_worst() -> None:
    found = findings_for(open_archive(ssn=2, military=1))
    ranks = [SEVERITY_ORDER.index(f.severity) for f in found]
    assert ranks == sorted(ranks) and found[0].severity == "critical"
    assert risk_level(found[1:]) in SEVERITY_ORDER
    assert risk_level([f for f in found if f.severity == "medium"]) == "medium"


def test_findings_are_frozen_and_strict() -> None:
    finding = findings_for(open_archive())[0]
    with pytest.raises(ValueError):
        finding.severity = "low"  # type: ignore[misc]
    with pytest.raises(ValueError):
        Finding(id="X", title="t", severity="high", evidence={}, remediation="r", extra=1)  # type: ignore[call-arg]
