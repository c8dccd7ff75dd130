"""The capability matrix: which services a stranger's association may use, learnt by negotiation.

The Query/Retrieve (FIND, MOVE, GET; Patient and Study Root) and a few Storage contexts ride
along in the one A-ASSOCIATE-RQ; the server's answer per context is the evidence. No C-MOVE,
C-GET or C-STORE is ever sent: acceptance of the context is what is recorded ("negotiated").
Only C-FIND is tried for real, by the census, which then upgrades its evidence to "verified"
or "refused" (some servers, Orthanc among them, accept every context and refuse per request).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from pacsaudit.config import ScanSettings
from pacsaudit.dicom import Association
from pacsaudit.dicom.constants import (
    CR_IMAGE_STORAGE,
    CT_IMAGE_STORAGE,
    MR_IMAGE_STORAGE,
    PATIENT_ROOT_FIND,
    PATIENT_ROOT_GET,
    PATIENT_ROOT_MOVE,
    SECONDARY_CAPTURE_IMAGE_STORAGE,
    STUDY_ROOT_FIND,
    STUDY_ROOT_GET,
    STUDY_ROOT_MOVE,
)
from pacsaudit.model import DicomBlock, Evidence, ServiceEvidence, Services, assign

__all__ = ["SERVICE_CLASSES", "ServicesProbe"]

SERVICE_CLASSES: dict[str, tuple[str, ...]] = {
    "find": (STUDY_ROOT_FIND, PATIENT_ROOT_FIND),
    "move": (STUDY_ROOT_MOVE, PATIENT_ROOT_MOVE),
    "get": (STUDY_ROOT_GET, PATIENT_ROOT_GET),
    "store": (CT_IMAGE_STORAGE, MR_IMAGE_STORAGE, CR_IMAGE_STORAGE, SECONDARY_CAPTURE_IMAGE_STORAGE),
}


class ServicesProbe:
    """Record, per service, whether any of its SOP classes was accepted for a stranger."""

    name = "services"

    def abstract_syntaxes(self, settings: ScanSettings) -> Sequence[str]:
        return tuple(uid for uids in SERVICE_CLASSES.values() for uid in uids)

    async def run(self, association: Association, block: DicomBlock, settings: ScanSettings) -> None:
        self.record(association, block)

    @staticmethod
    def record(association: Association, block: DicomBlock) -> None:
        """The matrix from the accepted contexts alone: no message is sent, so it cannot fail."""
        assign(block, ServicesProbe.fields(association))

    @staticmethod
    def fields(association: Association) -> dict[str, Any]:
        """What `record` sets, for a caller that sets it with other fields at once."""
        services, evidence = _matrix(frozenset(association.accepted_abstract_syntaxes()))
        return {"services": services, "services_evidence": evidence}


@lru_cache(maxsize=256)
def _matrix(accepted: frozenset[str]) -> tuple[Services, ServiceEvidence]:
    """Services granted and their evidence for one set of accepted SOP classes (a sweep meets
    few). Both blocks are immutable, so every result with this matrix shares the same two; a
    census replaces its own endpoint's blocks when a real C-FIND proves more."""
    granted = {service: any(uid in accepted for uid in uids) for service, uids in SERVICE_CLASSES.items()}
    evidence: dict[str, Evidence] = {
        service: "negotiated" if ok else "not-accepted" for service, ok in granted.items()
    }
    return Services(**granted), ServiceEvidence(**evidence)
