"""The public API of `pacsaudit.storage` is exactly what the CLI and the engine code against."""

from __future__ import annotations

import pacsaudit.storage as storage


def test_all_lists_the_public_names() -> None:
    assert sorted(storage.__all__) == [
        "BadLine",
        "DEFAULT_URL",
        "ImportSummary",
        "LowWaterMark",
        "ScanRecord",
        "ScanState",
        "ScanStore",
        "StorageError",
    ]


def test_every_exported_name_is_defined_in_a_storage_module() -> None:
    for name in storage.__all__:
        member = getattr(storage, name)
        if name != "DEFAULT_URL":
            assert member.__module__.startswith("pacsaudit.storage."), name


def test_the_default_is_a_sqlite_file_in_the_working_directory() -> None:
    assert storage.DEFAULT_URL == "sqlite:///pacsaudit.db"
