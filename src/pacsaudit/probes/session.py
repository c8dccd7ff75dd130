"""Probes that run inside an accepted association, and the registry the association probe asks.

Each session probe names the abstract syntaxes it wants proposed; the association probe puts
them all in one A-ASSOCIATE-RQ, so a stranger's association tells in one round trip which
services the server grants. A new DIMSE probe (C-FIND census, worklist...) is one new class
and one line in `registry.session_probes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pacsaudit.config import ScanSettings
from pacsaudit.dicom import Association
from pacsaudit.dicom.constants import VERIFICATION
from pacsaudit.model import DicomBlock

__all__ = ["EchoProbe", "SessionProbe"]


class SessionProbe(Protocol):
    name: str

    def abstract_syntaxes(self, settings: ScanSettings) -> Sequence[str]:
        """SOP classes to propose in the association request."""
        ...

    async def run(self, association: Association, block: DicomBlock, settings: ScanSettings) -> None:
        """Fill in `block` using the association; bounded in time by the caller."""
        ...


class EchoProbe:
    """C-ECHO: the stranger's association really answers DIMSE."""

    name = "echo"

    def abstract_syntaxes(self, settings: ScanSettings) -> Sequence[str]:
        return (VERIFICATION,)

    async def run(self, association: Association, block: DicomBlock, settings: ScanSettings) -> None:
        if association.accepted_context(VERIFICATION) is None:
            return
        block.echo = False  # stays False if the answer never comes
        status = await association.echo()
        block.echo = status == 0x0000
