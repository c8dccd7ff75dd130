"""A finding: one thing wrong with one endpoint, its severity, its evidence, what to do.

Evidence holds counts, flags, product names and versions copied from the result, never a
patient value; its values are scalars, so no dataset or block of the result can slip in whole.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["SEVERITY_ORDER", "EvidenceValue", "Finding", "Severity", "severity_rank"]

Severity = Literal["critical", "high", "medium", "low", "info"]
SEVERITY_ORDER: tuple[Severity, ...] = ("critical", "high", "medium", "low", "info")
"""Most severe first."""
EvidenceValue = str | int | bool | None


class Finding(BaseModel):
    """One thing wrong with one endpoint, with the evidence for it and what to do about it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    """Stable identifier of the rule (e.g. `PACS-DICOM-OPEN-AE`), for tickets and suppressions."""
    title: str
    severity: Severity
    evidence: dict[str, EvidenceValue]
    remediation: str


def severity_rank(severity: Severity) -> int:
    """0 for critical, 4 for info: sort keys, most severe first."""
    return SEVERITY_ORDER.index(severity)
