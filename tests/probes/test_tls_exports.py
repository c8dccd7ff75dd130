"""The TLS probes' public API is what `__all__` says, and the entry points keep their shape."""

from __future__ import annotations

import importlib
import inspect

import pytest

from pacsaudit.discovery import Connector
from pacsaudit.probes.dicom_tls import probe_dicom_over_tls
from pacsaudit.probes.tls import probe_tls

MODULES = ["pacsaudit.probes.tls", "pacsaudit.probes.dicom_tls", "pacsaudit.discovery.connect"]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist_and_are_sorted(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__ == sorted(module.__all__, key=lambda n: (not n.isupper(), n))
    assert [member for member in module.__all__ if not hasattr(module, member)] == []


def test_entry_points_the_engine_calls() -> None:
    assert list(inspect.signature(probe_tls).parameters) == [
        "ip",
        "port",
        "connector",
        "settings",
        "server_hostname",
    ]
    assert list(inspect.signature(probe_dicom_over_tls).parameters) == ["ip", "port", "ctx", "hostname"]
    opening = inspect.signature(Connector.open).parameters
    assert opening["ssl"].default is None and opening["server_hostname"].default is None
