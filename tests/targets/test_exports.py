"""The public API of `pacsaudit.targets` is exactly what other stages code against."""

from __future__ import annotations

import pacsaudit.targets as targets


def test_all_lists_the_public_names() -> None:
    assert sorted(targets.__all__) == [
        "Endpoint",
        "ExclusionList",
        "TargetSpecError",
        "TargetStream",
        "parse_ports",
    ]


def test_every_exported_name_is_defined_in_a_targets_module() -> None:
    for name in targets.__all__:
        member = getattr(targets, name)
        assert member.__module__.startswith("pacsaudit.targets."), name


def test_target_spec_error_is_a_value_error() -> None:
    assert issubclass(targets.TargetSpecError, ValueError)
