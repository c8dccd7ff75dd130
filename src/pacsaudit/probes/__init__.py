"""Probes: what pacsaudit asks an open port, one module per protocol or service."""

from pacsaudit.probes.dicom_association import DicomProbeContext, probe_dicom
from pacsaudit.probes.session import SESSION_PROBES, EchoProbe, SessionProbe

__all__ = ["SESSION_PROBES", "DicomProbeContext", "EchoProbe", "SessionProbe", "probe_dicom"]
