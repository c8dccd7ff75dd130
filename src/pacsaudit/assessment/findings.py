"""Findings: small pure rules that turn one `EndpointResult` into what a security team acts on.

Each rule reads only the result (no I/O) and returns findings with a stable id, a title, a
severity, evidence from the result and one remediation sentence (`finding.py`); the rules live
by protocol in `dicom_rules.py` and `web_rules.py`. `findings_for` runs every rule; `risk_level`
is the worst severity among a system's findings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from pacsaudit.assessment.dicom_rules import (
    rule_dicom_reachable,
    rule_find_open,
    rule_no_tls,
    rule_open_to_any_ae,
    rule_retrieve_open,
    rule_sensitive_shapes,
    rule_store_open,
)
from pacsaudit.assessment.finding import SEVERITY_ORDER, EvidenceValue, Finding, Severity, severity_rank
from pacsaudit.assessment.web_rules import rule_tls_weakness, rule_vulnerable_version, rule_web_exposure
from pacsaudit.model import EndpointResult

__all__ = [
    "RULES",
    "SEVERITY_ORDER",
    "EvidenceValue",
    "Finding",
    "Rule",
    "Severity",
    "findings_for",
    "risk_level",
    "severity_rank",
]

Rule = Callable[[EndpointResult], list[Finding]]

RULES: tuple[Rule, ...] = (
    rule_open_to_any_ae,
    rule_find_open,
    rule_retrieve_open,
    rule_store_open,
    rule_sensitive_shapes,
    rule_no_tls,
    rule_vulnerable_version,
    rule_web_exposure,
    rule_tls_weakness,
    rule_dicom_reachable,
)
"""Every rule, in the order their findings are listed among equals."""


def findings_for(result: EndpointResult) -> list[Finding]:
    """Every finding for one endpoint, most severe first (rule order among equal severities)."""
    found = [finding for rule in RULES for finding in rule(result)]
    return sorted(found, key=lambda f: severity_rank(f.severity))


def risk_level(findings: Sequence[Finding]) -> Severity | Literal["none"]:
    """A system's risk: the worst severity among its findings, `none` without any."""
    if not findings:
        return "none"
    return min((f.severity for f in findings), key=severity_rank)
