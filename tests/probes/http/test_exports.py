"""The web probe's public API is what `__all__` says (httpx's test_exported_members)."""

from __future__ import annotations

import importlib

import pytest

import pacsaudit.probes.http

MODULES = [
    "pacsaudit.probes.http",
    "pacsaudit.probes.http.client",
    "pacsaudit.probes.http.census",
    "pacsaudit.probes.http.probe",
    "pacsaudit.probes.http.signatures",
    "pacsaudit.lab.hostile_http",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist_and_are_sorted(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__ == sorted(module.__all__, key=lambda n: (not n.isupper(), n))
    assert [member for member in module.__all__ if not hasattr(module, member)] == []


def test_package_exports_the_entry_point() -> None:
    assert "probe_http" in pacsaudit.probes.http.__all__
    assert pacsaudit.probes.http.probe_http.__kwdefaults__ == {"hostname": None, "transport": None}
