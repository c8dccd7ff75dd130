"""Assessment: who holds an address, what is wrong with an endpoint, and what it may cost.

Pure functions over `EndpointResult` (the attributor reads offline data files only), used by
the scan (attribution at emit time), the reports, the DefectDojo export and owner notices.

Attribution loads with the package (every scan needs it); the findings, the vulnerable-versions
data and the cost model load on first use, so a scan does not pay for them at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pacsaudit.assessment.attribution import (
    AttributionError,
    Attributor,
    address_scope,
    attributed,
    owner_label,
)
from pacsaudit.lazy import lazy_exports

if TYPE_CHECKING:
    from pacsaudit.assessment.cost import (
        DEFAULT_COST_MODEL,
        CostEstimate,
        CostModel,
        cost_model,
        estimate_cost,
        order_of_magnitude,
    )
    from pacsaudit.assessment.dicom_rules import exposed_shapes
    from pacsaudit.assessment.findings import (
        RULES,
        SEVERITY_ORDER,
        Finding,
        Severity,
        findings_for,
        risk_level,
        severity_rank,
    )
    from pacsaudit.assessment.vulnerabilities import KnownVulnerability, load_vulnerabilities

__all__ = [
    "DEFAULT_COST_MODEL",
    "RULES",
    "SEVERITY_ORDER",
    "AttributionError",
    "Attributor",
    "CostEstimate",
    "CostModel",
    "Finding",
    "KnownVulnerability",
    "Severity",
    "address_scope",
    "attributed",
    "cost_model",
    "estimate_cost",
    "exposed_shapes",
    "findings_for",
    "load_vulnerabilities",
    "order_of_magnitude",
    "owner_label",
    "risk_level",
    "severity_rank",
]

_LAZY = {
    **dict.fromkeys(
        ("DEFAULT_COST_MODEL", "CostEstimate", "CostModel", "cost_model", "estimate_cost"),
        "pacsaudit.assessment.cost",
    ),
    **dict.fromkeys(
        ("RULES", "SEVERITY_ORDER", "Finding", "Severity", "findings_for", "risk_level", "severity_rank"),
        "pacsaudit.assessment.findings",
    ),
    **dict.fromkeys(("KnownVulnerability", "load_vulnerabilities"), "pacsaudit.assessment.vulnerabilities"),
    "order_of_magnitude": "pacsaudit.assessment.cost",
    "exposed_shapes": "pacsaudit.assessment.dicom_rules",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
