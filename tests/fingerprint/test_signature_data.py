"""signatures.toml: schema, compiled regexes, and that every signature is reachable.

Each signature carries examples; the first signature that matches an example must be the
signature itself. That proves the file order (specific before general) and catches a signature
shadowed by an earlier, broader one.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

import pytest

from pacsaudit.fingerprint import identify
from pacsaudit.fingerprint.implementation import _signatures, parse_signatures


def _document() -> dict[str, Any]:
    text = (resources.files("pacsaudit") / "data" / "signatures.toml").read_text("utf-8")
    return tomllib.loads(text)


def _entries() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = _document()["signature"]
    return entries


def _examples() -> list[tuple[str, dict[str, Any]]]:
    return [(entry["id"], example) for entry in _entries() for example in entry.get("examples", [])]


def test_shipped_file_parses_and_is_large_enough() -> None:
    signatures = parse_signatures(_document())
    assert len(signatures) >= 40
    assert {s.confidence for s in signatures} == {"high", "low"}


@pytest.mark.parametrize("entry", _entries(), ids=lambda entry: str(entry.get("id")))
def test_every_signature_documents_itself(entry: dict[str, Any]) -> None:
    for key in ("id", "product", "confidence", "source"):
        assert isinstance(entry.get(key), str) and entry[key].strip(), key
    assert len(entry["source"]) >= 20, "say where the fact comes from"
    assert entry.get("examples"), "give at least one pair this signature must win"


@pytest.mark.parametrize(("signature_id", "example"), _examples(), ids=lambda v: str(v))
def test_each_example_is_won_by_its_own_signature(signature_id: str, example: dict[str, Any]) -> None:
    uid, name = example.get("uid", ""), example.get("name", "")
    winner = next((s for s in _signatures() if s.match(uid, name) is not None), None)
    assert winner is not None and winner.id == signature_id

    found = identify(uid or None, name or None)
    assert found is not None
    assert found.version == (example.get("version") or None)


def test_no_two_signatures_have_the_same_conditions() -> None:
    conditions = [
        (s.uid, s.uid_prefix, s.name_regex.pattern if s.name_regex else None) for s in _signatures()
    ]
    duplicates = {c for c in conditions if conditions.count(c) > 1}
    assert not duplicates


def test_dcmtk_pair_is_low_confidence_and_says_orthanc_shares_it() -> None:
    dcmtk = next(e for e in _entries() if e["id"] == "dcmtk")
    assert dcmtk["confidence"] == "low"
    assert "Orthanc" in dcmtk["source"]


def test_shipped_examples_only_use_printable_ascii() -> None:
    for _, example in _examples():
        for value in (example.get("uid", ""), example.get("name", "")):
            assert value.isascii() and value.isprintable()


BROKEN: list[tuple[str, dict[str, Any]]] = [
    ("no signatures", {}),
    ("empty array", {"signature": []}),
    ("missing product", {"signature": [{"id": "x", "uid": "1.2", "confidence": "low", "source": "s"}]}),
    ("missing source", {"signature": [{"id": "x", "uid": "1.2", "product": "p", "confidence": "low"}]}),
    (
        "bad confidence",
        {"signature": [{"id": "x", "uid": "1.2", "product": "p", "confidence": "medium", "source": "s"}]},
    ),
    ("no condition", {"signature": [{"id": "x", "product": "p", "confidence": "low", "source": "s"}]}),
    (
        "regex does not compile",
        {"signature": [{"id": "x", "name_regex": "(", "product": "p", "confidence": "low", "source": "s"}]},
    ),
    (
        "unknown key",
        {
            "signature": [
                {"id": "x", "uid": "1", "uuid": "1", "product": "p", "confidence": "low", "source": "s"}
            ]
        },
    ),
    (
        "duplicate id",
        {
            "signature": [
                {"id": "x", "uid": "1.2", "product": "p", "confidence": "low", "source": "s"},
                {"id": "x", "uid": "1.3", "product": "p", "confidence": "low", "source": "s"},
            ]
        },
    ),
    (
        "uid_tail without prefix",
        {
            "signature": [
                {"id": "x", "uid": "1.2", "version_from": "uid_tail", "product": "p"}
                | {"confidence": "low", "source": "s"}
            ]
        },
    ),
    (
        "name version without group",
        {
            "signature": [
                {"id": "x", "name_regex": "^A$", "version_from": "name", "product": "p"}
                | {"confidence": "low", "source": "s"}
            ]
        },
    ),
    (
        "uid and uid_prefix",
        {
            "signature": [
                {"id": "x", "uid": "1.2", "uid_prefix": "1.", "product": "p"}
                | {"confidence": "low", "source": "s"}
            ]
        },
    ),
    (
        "bad id",
        {"signature": [{"id": "X Y", "uid": "1.2", "product": "p", "confidence": "low", "source": "s"}]},
    ),
]


@pytest.mark.parametrize(("why", "document"), BROKEN, ids=[why for why, _ in BROKEN])
def test_malformed_documents_are_rejected(why: str, document: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        parse_signatures(document)
