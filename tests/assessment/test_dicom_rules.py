"""The DICOM rules on hand-built results: which fire, with what severity and evidence."""

from __future__ import annotations

from pacsaudit.assessment import Finding, findings_for, risk_level
from pacsaudit.model import Attribution, EndpointResult, SensitiveShapes, Status

from .results import PUBLIC_NL, STAMP, open_archive, refusing_archive, weak_tls, web_front_end

SERVICE_RULES = (
    "PACS-DICOM-CFIND-OPEN",
    "PACS-DICOM-CMOVE-OPEN",
    "PACS-DICOM-CGET-OPEN",
    "PACS-DICOM-CSTORE-OPEN",
)


def _by_id(result: EndpointResult) -> dict[str, Finding]:
    found = findings_for(result)
    ids = [f.id for f in found]
    assert len(ids) == len(set(ids)), f"one finding per rule and endpoint: {ids}"
    return {f.id: f for f in found}


def test_a_verified_open_archive_is_critical_with_its_counts() -> None:
    found = _by_id(open_archive(patients=120))
    assert found["PACS-DICOM-OPEN-AE"].severity == "high"
    find = found["PACS-DICOM-CFIND-OPEN"]
    assert find.severity == "critical"
    assert find.evidence["evidence"] == "verified"
    assert (find.evidence["patients"], find.evidence["studies"], find.evidence["instances"]) == (
        120,
        300,
        45000,
    )
    assert risk_level(list(found.values())) == "critical"


def test_negotiated_only_services_stay_medium_even_when_find_is_verified() -> None:
    # Given an archive that answered a stranger's C-FIND but whose C-MOVE and C-STORE are known
    # only from the accepted presentation contexts (Orthanc grants each service separately,
    # accepts every context from anyone and refuses per request)
    found = _by_id(open_archive(find="verified", move="negotiated", get="negotiated", store="negotiated"))
    assert found["PACS-DICOM-CFIND-OPEN"].severity == "critical"
    for rule in SERVICE_RULES[1:]:
        negotiated = found[rule]
        assert negotiated.severity == "medium", rule
        assert negotiated.evidence["evidence"] == "negotiated" and "negotiated only" in negotiated.title
        assert negotiated.evidence["find_evidence"] == "verified"
    assert "tampering" in found["PACS-DICOM-CSTORE-OPEN"].title

    # and without a verified C-FIND, every negotiated-only service is medium too, C-FIND included
    alone = _by_id(open_archive(find="negotiated", move="negotiated", get="negotiated", store="negotiated"))
    assert "negotiated only" in alone["PACS-DICOM-CFIND-OPEN"].title
    assert {rule: alone[rule].severity for rule in SERVICE_RULES} == dict.fromkeys(SERVICE_RULES, "medium")
    # the association itself is proven, whatever the services: that stays high
    assert alone["PACS-DICOM-OPEN-AE"].severity == "high"


def test_verified_retrieve_and_store_are_high() -> None:
    found = _by_id(open_archive(find="verified", move="verified", get="verified", store="verified"))
    assert {rule: found[rule].severity for rule in SERVICE_RULES[1:]} == dict.fromkeys(
        SERVICE_RULES[1:], "high"
    )
    assert "negotiated only" not in found["PACS-DICOM-CMOVE-OPEN"].title


def test_refused_or_rejected_services_raise_nothing() -> None:
    found = _by_id(
        open_archive(find="refused", move="not-accepted", get="not-accepted", store="not-accepted")
    )
    assert not {"PACS-DICOM-CFIND-OPEN", "PACS-DICOM-CMOVE-OPEN", "PACS-DICOM-CGET-OPEN"} & set(found)
    assert "PACS-DICOM-CSTORE-OPEN" not in found
    assert "PACS-DICOM-OPEN-AE" in found


def test_services_without_recorded_evidence_count_as_negotiated() -> None:
    old = open_archive(find=None, move=None, store=None)
    assert old.dicom is not None
    old.dicom.services_evidence = None
    old.dicom.services = old.dicom.services.model_copy(update={"find": True, "move": True})  # type: ignore[union-attr]
    found = _by_id(old)
    assert found["PACS-DICOM-CFIND-OPEN"].evidence["evidence"] == "negotiated"
    assert found["PACS-DICOM-CMOVE-OPEN"].evidence["evidence"] == "negotiated"


def test_ssn_shapes_are_critical_and_labelled_as_shapes() -> None:
    found = _by_id(open_archive(ssn=17, military=3))
    ssn = found["PACS-DICOM-SSN-SHAPES"]
    assert ssn.severity == "critical"
    assert ssn.evidence["ssn_shaped"] == 17 and ssn.evidence["label"] == "shape-count"
    assert "shapes, not proof" in ssn.title
    assert found["PACS-DICOM-MILITARY-ID-SHAPES"].severity == "medium"
    assert "PACS-DICOM-SSN-SHAPES" not in _by_id(open_archive(ssn=0))


def test_ssn_shapes_seen_over_dicomweb_are_the_same_finding() -> None:
    # Given a web front end whose QIDO-RS census saw SSN-shaped identifiers (and no DICOM block)
    web = web_front_end()
    assert web.http is not None
    web.http.sensitive = SensitiveShapes(ssn_shaped=4, military_id_shaped=0)
    ssn = _by_id(web)["PACS-DICOM-SSN-SHAPES"]
    assert (ssn.evidence["ssn_shaped"], ssn.evidence["seen_through"]) == (4, "QIDO-RS")
    assert ssn.evidence["patients"] == 7
    # and where both ways saw the archive, the larger count stands, once
    both = open_archive(ssn=2)
    both.http = web.http
    assert _by_id(both)["PACS-DICOM-SSN-SHAPES"].evidence["ssn_shaped"] == 4


def test_no_tls_only_on_internet_reachable_addresses() -> None:
    public = _by_id(open_archive(attribution=PUBLIC_NL))["PACS-DICOM-NO-TLS"]
    assert public.evidence["scope"] == "public" and public.severity == "high"
    for scope in ("private", "loopback", "shared"):
        assert "PACS-DICOM-NO-TLS" not in _by_id(open_archive(attribution=Attribution(scope=scope)))  # type: ignore[arg-type]
    assert "PACS-DICOM-NO-TLS" not in _by_id(open_archive(attribution=None))
    over_tls = open_archive()
    over_tls.tls = weak_tls("TLSv1.3", self_signed=False, expired=False)
    assert "PACS-DICOM-NO-TLS" not in _by_id(over_tls)


def test_guessable_ae_title_when_not_open_to_any() -> None:
    result = open_archive(open_to_any_ae=False, called_ae_check=True, accepted_called_ae="ORTHANC")
    found = _by_id(result)
    assert "PACS-DICOM-OPEN-AE" not in found
    guess = found["PACS-DICOM-GUESSABLE-AE"]
    assert guess.severity == "medium" and guess.evidence["accepted_called_ae"] == "ORTHANC"


def test_a_refusing_service_is_only_informational() -> None:
    found = findings_for(refusing_archive())
    assert [f.id for f in found] == ["PACS-DICOM-REACHABLE"]
    assert risk_level(found) == "info"


def test_closed_ports_have_no_findings() -> None:
    closed = EndpointResult(
        ip="127.0.0.1", port=104, status=Status.CONNECTION_REFUSED, elapsed_ms=1.0, timestamp=STAMP
    )
    assert findings_for(closed) == []
    assert risk_level([]) == "none"
