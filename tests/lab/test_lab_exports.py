"""The lab's public API is what `__all__` says, in every module (httpx's test_exported_members)."""

from __future__ import annotations

import importlib

import pytest

import pacsaudit.lab

MODULES = ["pacsaudit.lab", "pacsaudit.lab.simulator", "pacsaudit.lab.hostile", "pacsaudit.lab.fleet"]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist_and_are_sorted(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__ == sorted(module.__all__, key=lambda n: (not n.isupper(), n))
    missing = [member for member in module.__all__ if not hasattr(module, member)]
    assert not missing


def test_package_exports_the_lab_entry_points() -> None:
    assert set(pacsaudit.lab.__all__) == {
        "LAB_FLEET",
        "HostileKind",
        "HostileServer",
        "LabMember",
        "PacsPolicy",
        "RunningFleet",
        "SimulatedPacs",
        "ThreadedFleet",
        "many_members",
        "start_fleet",
        "start_fleet_in_thread",
        "start_hostile",
        "start_many",
        "start_simulated_pacs",
    }
