"""The fingerprint package's public API is exactly what __all__ says."""

from __future__ import annotations

import pacsaudit.fingerprint as fingerprint


def test_public_api() -> None:
    assert sorted(fingerprint.__all__) == [
        "Identification",
        "called_ae_dictionary",
        "calling_ae_dictionary",
        "identify",
        "is_valid_ae_title",
    ]
    for name in fingerprint.__all__:
        assert getattr(fingerprint, name) is not None


def test_no_other_public_names() -> None:
    public = {n for n in vars(fingerprint) if not n.startswith("_")}
    assert public - set(fingerprint.__all__) <= {"ae_titles", "implementation"}
