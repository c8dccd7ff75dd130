"""The association probe against real PACS software: the public fields, as these servers behave.

What each server really does is pinned in test_servers_fixture.py; here pacsaudit must report
exactly that, from a stranger's point of view.
"""

from __future__ import annotations

import pytest
from servers import ACME_CALLING_AET, RunningServer

from scanning import scan_one

pytestmark = pytest.mark.integration

DCMTK_UID = "1.2.276.0.7230010.3.0.3.6.7"


def test_open_orthanc_is_open_to_any_ae(orthanc_open: RunningServer) -> None:
    result = scan_one(orthanc_open.host, orthanc_open.port)
    d = result.dicom
    assert result.status == "success" and d is not None
    assert (d.detected, d.association, d.reject) == (True, "accepted", None)
    assert (d.open_to_any_ae, d.called_ae_check, d.calling_ae_check) == (True, False, False)
    assert d.ae_attempts == 1
    assert d.accepted_called_ae is not None and d.accepted_called_ae.startswith("PA")
    assert (d.implementation_class_uid, d.implementation_version_name) == (DCMTK_UID, "OFFIS_DCMTK_367")
    assert d.version == "3.6.7"
    assert d.echo is True
    assert d.max_pdu_length == 16384
    assert d.accepted_contexts[0] == "1.2.840.10008.1.1"
    # Orthanc accepts every Q/R and storage context from anyone and refuses per request instead.
    assert d.services is not None and d.services_evidence is not None
    assert (d.services.find, d.services.move, d.services.get, d.services.store) == (True, True, True, True)
    assert d.services_evidence.move == "negotiated" and d.services_evidence.find == "negotiated"
    assert (d.counts, d.find_refusal) == (None, None), "no C-FIND without --census"


def test_orthanc_called_aet_check_is_found_through_the_dictionary(
    orthanc_called_check: RunningServer,
) -> None:
    d = scan_one(orthanc_called_check.host, orthanc_called_check.port).dicom
    assert d is not None
    assert d.association == "accepted"
    assert d.reject is not None and (d.reject.result, d.reject.source, d.reject.reason) == (1, 1, 7)
    assert d.reject.reason_text == "called-AE-title-not-recognized"
    assert d.open_to_any_ae is False
    assert (d.called_ae_check, d.calling_ae_check) == (True, False)
    assert d.accepted_called_ae is not None and d.accepted_called_ae.upper() == "ORTHANC"
    assert d.echo is True


def test_orthanc_called_aet_check_without_dictionary_stays_undecided(
    orthanc_called_check: RunningServer,
) -> None:
    d = scan_one(orthanc_called_check.host, orthanc_called_check.port, ae_dictionary=False).dicom
    assert d is not None
    assert (d.association, d.open_to_any_ae) == ("rejected", False)
    assert (d.called_ae_check, d.calling_ae_check) == (None, None)
    assert d.implementation_class_uid is None and d.echo is None
    # The stranger test, then the user's calling title with the stranger's called title.
    assert d.ae_attempts == 2


def test_user_called_title_is_tried_first(orthanc_called_check: RunningServer) -> None:
    d = scan_one(orthanc_called_check.host, orthanc_called_check.port, called_ae=["ORTHANC"]).dicom
    assert d is not None
    assert (d.accepted_called_ae, d.ae_attempts) == ("ORTHANC", 2)


def test_dcmqrscp_called_check(dcmqrscp_any: RunningServer) -> None:
    d = scan_one(dcmqrscp_any.host, dcmqrscp_any.port).dicom
    assert d is not None
    assert (d.association, d.open_to_any_ae) == ("accepted", False)
    assert (d.called_ae_check, d.calling_ae_check) == (True, False)
    assert d.accepted_called_ae == dcmqrscp_any.aet
    assert d.implementation_class_uid == DCMTK_UID
    assert d.echo is True
    assert d.services is not None
    assert (d.services.find, d.services.move, d.services.get, d.services.store) == (True, True, True, True)


def test_dcmqrscp_calling_check_behind_a_lying_reason(dcmqrscp_restricted: RunningServer) -> None:
    """dcmqrscp says "called AE not recognized" for an unknown calling title too.

    The checks must come from varying one title at a time, not from the reason code.
    """
    d = scan_one(
        dcmqrscp_restricted.host,
        dcmqrscp_restricted.port,
        called_ae=[dcmqrscp_restricted.aet],
        calling_ae=ACME_CALLING_AET,
        ae_dictionary=False,
    ).dicom
    assert d is not None
    assert d.reject is not None and d.reject.reason == 7
    assert (d.association, d.open_to_any_ae) == ("accepted", False)
    assert (d.called_ae_check, d.calling_ae_check) == (True, True)
    assert (d.accepted_called_ae, d.accepted_calling_ae) == (dcmqrscp_restricted.aet, ACME_CALLING_AET)
    assert d.ae_attempts == 4


def test_dcmqrscp_unknown_calling_title_leaves_checks_undecided(dcmqrscp_restricted: RunningServer) -> None:
    d = scan_one(dcmqrscp_restricted.host, dcmqrscp_restricted.port, max_ae_attempts=20).dicom
    assert d is not None
    assert (d.association, d.open_to_any_ae) == ("rejected", False)
    assert (d.called_ae_check, d.calling_ae_check) == (None, None)
    assert d.ae_attempts == 20
