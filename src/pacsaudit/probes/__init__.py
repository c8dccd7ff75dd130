"""Probes: what pacsaudit asks an open port, one module per protocol or service."""

from pacsaudit.probes.dicom_association import DicomProbeContext, probe_dicom
from pacsaudit.probes.registry import session_probes
from pacsaudit.probes.session import EchoProbe, SessionProbe

__all__ = ["DicomProbeContext", "EchoProbe", "SessionProbe", "probe_dicom", "session_probes"]
