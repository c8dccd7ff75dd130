"""The public API of `pacsaudit.assessment`: what the reports, the scan and the notices code against."""

from __future__ import annotations

import inspect

import pacsaudit.assessment as assessment
from pacsaudit.assessment import Attributor, estimate_cost, findings_for, owner_label, risk_level
from pacsaudit.reports import defectdojo, notify


def test_all_lists_the_public_names() -> None:
    assert sorted(assessment.__all__) == sorted(
        [
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
    )
    for name in assessment.__all__:
        assert getattr(assessment, name) is not None


def test_the_interface_the_report_renderers_code_against() -> None:
    assert assessment.SEVERITY_ORDER == ("critical", "high", "medium", "low", "info")
    assert list(inspect.signature(Attributor).parameters) == ["asn_database"]
    assert inspect.signature(Attributor).parameters["asn_database"].default is None
    assert list(inspect.signature(owner_label).parameters) == ["attribution"]
    assert list(inspect.signature(findings_for).parameters) == ["result"]
    assert list(inspect.signature(risk_level).parameters) == ["findings"]
    assert list(inspect.signature(estimate_cost).parameters) == ["patients", "ssn_shaped", "model"]
    assert set(assessment.Finding.model_fields) == {"id", "title", "severity", "evidence", "remediation"}
    assert set(assessment.CostEstimate.model_fields) == {
        "patients",
        "ssn_shaped",
        "amount",
        "formula",
        "model",
    }
    assert set(assessment.CostModel.model_fields) == {"per_record", "per_ssn_record", "currency", "source"}
    dojo = inspect.signature(defectdojo.defectdojo_findings).parameters
    assert list(dojo)[:2] == ["results", "scan_label"]
    assert dojo["scan_label"].kind is inspect.Parameter.KEYWORD_ONLY
    notices = inspect.signature(notify.write_owner_notices).parameters
    assert list(notices)[:3] == ["results", "out_dir", "attributor"]
    assert notices["attributor"].kind is inspect.Parameter.KEYWORD_ONLY
