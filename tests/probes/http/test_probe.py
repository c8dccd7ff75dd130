"""`probe_http` against fake servers (httpx.MockTransport): products we cannot run here, QIDO-RS
paging quirks, default credentials, privacy and time bounds. Real Orthanc is in
tests/integration/test_http_real_servers.py."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from pacsaudit.config import ScanSettings
from pacsaudit.model import HttpBlock, Status
from pacsaudit.probes.http import USER_AGENT, probe_http
from probes.http.fakes import (
    PATIENT_NAME_MARK,
    FakeQido,
    FakeStudy,
    basic_auth_wall,
    fake_orthanc,
    make_studies,
    page,
    router,
)

DCM4CHEE_UI = "<!doctype html><html><head><title>dcm4chee-arc</title></head><body><dcm-root></dcm-root>"
OHIF_INDEX = '<!doctype html><html><head><title>OHIF Viewer</title><script src="/app-config.js"></script>'
CONQUEST = "<html><title>Conquest DICOM server - version 1.5.0c</title><body>dgate</body></html>"


def _settings(**overrides: Any) -> ScanSettings:
    options: dict[str, Any] = {"timeout": 1.0, "deadline": 5.0, "query_pause": 0.0} | overrides
    return ScanSettings(**options)


def _probe(transport: httpx.AsyncBaseTransport, **overrides: Any) -> HttpBlock:
    return asyncio.run(
        probe_http("127.0.0.1", 8080, tls=False, settings=_settings(**overrides), transport=transport)
    )


def test_dcm4chee_ui_and_open_qido_rs_under_its_ae_title() -> None:
    # Given an unsecured dcm4chee-arc: UI at /dcm4chee-arc/ui2/, QIDO-RS at /aets/DCM4CHEE/rs
    qido = FakeQido(make_studies(12), root="/dcm4chee-arc/aets/DCM4CHEE/rs")
    block = _probe(router(page("/dcm4chee-arc/ui2/", DCM4CHEE_UI), qido.handle), census=True)
    # Then both services are named, the root is recorded, and the census counts every study
    kinds = {s.kind: s for s in block.services}
    assert set(kinds) == {"dicomweb", "dcm4chee-ui"}
    assert block.product == "dcm4chee-arc"
    assert block.dicomweb_root == "/dcm4chee-arc/aets/DCM4CHEE/rs"
    assert block.studies_listable is True and block.auth_required is False
    assert block.counts is not None and block.counts.complete
    assert (block.counts.studies, block.counts.patients) == (12, 6)
    assert block.counts.series == sum(len(s.series) for s in qido.studies)
    assert block.counts_source == "qido-rs"


def test_secured_dcm4chee_demands_a_bearer_token_and_lists_nothing() -> None:
    def keycloak_wall(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.startswith("/dcm4chee-arc/aets/"):
            return httpx.Response(401, headers={"www-authenticate": 'Bearer realm="dcm4che"'})
        return None

    block = _probe(
        router(page("/dcm4chee-arc/ui2/", DCM4CHEE_UI), keycloak_wall),
        census=True,
        try_default_credentials=True,
    )
    dicomweb = next(s for s in block.services if s.kind == "dicomweb")
    assert dicomweb.auth_required is True and dicomweb.lists_studies is False
    assert block.auth_required is True  # the data service decides; the UI shell is static
    assert block.studies_listable is False
    assert block.counts is None
    # dcm4chee's documented defaults are Keycloak form logins: listed, never sent as Basic
    assert block.default_credentials_accepted is None


def test_ohif_conquest_and_the_generic_fallback() -> None:
    ohif = _probe(router(page("/", OHIF_INDEX)))
    assert [s.kind for s in ohif.services] == ["ohif"] and ohif.product == "OHIF Viewer"
    conquest = _probe(router(page("/cgi-bin/dgate", CONQUEST)))
    assert conquest.product == "Conquest DICOM server" and conquest.version == "1.5.0c"
    generic = _probe(router(page("/", "<html><title>Radiology</title><script src=cornerstone.min.js>")))
    assert [s.kind for s in generic.services] == ["pacs-viewer"] and generic.product is None
    nginx = _probe(router(page("/", "<html><title>Welcome to nginx!</title></html>")))
    assert nginx.detected and nginx.services == [] and nginx.status is Status.SUCCESS
    assert nginx.auth_required is None and nginx.studies_listable is None


def test_orthanc_statistics_give_exact_counts_in_one_request() -> None:
    block = _probe(router(fake_orthanc(statistics=(3, 5, 9, 20))), census=True)
    assert block.product == "Orthanc" and block.version == "1.12.4"
    assert block.counts_source == "orthanc-statistics"
    assert block.counts is not None
    assert (block.counts.patients, block.counts.studies, block.counts.series, block.counts.instances) == (
        3,
        5,
        9,
        20,
    )
    assert block.counts.complete and block.counts.queries == 1
    assert block.studies_listable is True  # /studies answered a list of identifiers


def _listing(qido: FakeQido, resource: str = "studies") -> list[str]:
    """The requests of the unsplit listing of `resource` (no StudyDate range)."""
    return [r for r in qido.requests if f"/{resource}?includefield" in r and "StudyDate" not in r]


def _truth(studies: list[FakeStudy]) -> tuple[int, int, int, int]:
    return (
        len({s.patient_id for s in studies}),
        len(studies),
        sum(len(s.series) for s in studies),
        sum(len(x) for s in studies for x in s.series),
    )


def _numbers(block: HttpBlock) -> tuple[int | None, int | None, int | None, int | None]:
    assert block.counts is not None
    c = block.counts
    return c.patients, c.studies, c.series, c.instances


def test_qido_paging_with_a_per_page_cap_still_counts_everything() -> None:
    qido = FakeQido(make_studies(23), page_cap=5)
    block = _probe(router(qido.handle), census=True)
    assert block.counts is not None
    assert _numbers(block) == _truth(qido.studies) and block.counts.complete
    # a per-page limit is paged past: no cap on the total, the limit recorded beside
    assert not block.counts.capped and block.counts.cap is None and block.counts.split == []
    assert block.qido_page_limit == 5
    # 5+5+5+5+3: the short last page ends the listing without asking for an empty one
    assert len(_listing(qido)) == 5


def test_a_per_page_cap_and_an_undated_study_is_a_complete_listing() -> None:
    studies = [*make_studies(12), FakeStudy("9.9.9", "PX", "", ["CT"], [["9.9.9.1"]])]
    qido = FakeQido(studies, page_cap=5)
    block = _probe(router(qido.handle), census=True)
    counts = block.counts
    assert counts is not None and counts.complete and counts.incomplete_reason is None
    assert _numbers(block) == _truth(studies)
    assert not counts.capped and block.qido_page_limit == 5
    assert block.study_dates is not None and block.study_dates.undated == 1


def test_series_listed_past_a_per_page_cap_are_complete() -> None:
    qido = FakeQido(make_studies(12), page_cap=5, with_counts=False)
    block = _probe(router(qido.handle), census=True)
    counts = block.counts
    assert counts is not None and counts.complete, counts
    assert _numbers(block) == _truth(qido.studies)
    assert counts.counted_from == "image-level" and not counts.capped


def test_a_server_ignoring_limit_and_offset_that_sends_everything_at_once_is_complete() -> None:
    qido = FakeQido(make_studies(5), ignore_offset=True)
    block = _probe(router(qido.handle), census=True)
    counts = block.counts
    assert counts is not None and counts.complete and counts.incomplete_reason is None
    assert _numbers(block) == _truth(qido.studies)
    assert not counts.capped and counts.cap is None
    assert len(_listing(qido)) == 2  # the second page repeated the short first one: that was all


def test_a_silent_total_cap_is_found_by_a_study_date_split() -> None:
    # Given a server that cuts every answer at 7 studies before applying offset (3 studies a year)
    qido = FakeQido(make_studies(30, years=10), total_cap=7)
    block = _probe(router(qido.handle), census=True)
    # Then the census notices the cut and splits on StudyDate years until every range answers whole
    counts = block.counts
    assert counts is not None
    assert (counts.capped, counts.cap, counts.split) == (True, 7, ["study-date"])
    assert _numbers(block) == _truth(qido.studies) == (15, 30, 45, 90)
    assert counts.complete and counts.incomplete_reason is None
    assert block.qido_page_limit is None  # a cut total is not a per-page limit
    assert block.study_dates is not None and block.study_dates.per_year == {
        str(y): 3 for y in range(2010, 2020)
    }


def test_a_server_ignoring_offset_ends_with_a_lower_bound() -> None:
    # Given a server that ignores offset and fills every page as asked (10 a page): paging is stuck
    qido = FakeQido(make_studies(40), ignore_offset=True)
    block = _probe(router(qido.handle), census=True, max_answers_per_query=10)
    counts = block.counts
    assert counts is not None and not counts.complete
    assert _numbers(block) == (5, 10, 15, 30) and counts.queries == 2
    assert counts.incomplete_reason == "the server ignores offset (a page repeated what was counted)"
    assert not counts.capped and counts.counted_from == "study-keys"


def test_a_server_ignoring_offset_behind_a_page_cap_is_counted_by_a_split() -> None:
    # Given 10 answers at most per request and offset ignored: a total cap of 10 in effect
    qido = FakeQido(make_studies(40), ignore_offset=True, page_cap=10)
    block = _probe(router(qido.handle), census=True)
    # Then the split proves the cut and reaches every study (4 a year: each year answers whole)
    counts = block.counts
    assert counts is not None and counts.complete
    assert (counts.capped, counts.cap, counts.split) == (True, 10, ["study-date"])
    assert _numbers(block) == _truth(qido.studies)


def test_the_answer_budget_is_honoured_like_the_c_find_census() -> None:
    qido = FakeQido(make_studies(23), page_cap=5)
    block = _probe(router(qido.handle), census=True, max_answers=12)
    counts = block.counts
    assert counts is not None and not counts.complete
    assert counts.incomplete_reason == "answer budget of 12 spent"
    assert counts.studies == 12 and counts.queries == 3
    limits = [int(r.split("limit=")[1].split("&")[0]) for r in _listing(qido)]
    assert limits == [12, 7, 2]  # never more asked than the budget has left


def test_a_redirecting_proxy_in_front_of_qido_rs_is_counted() -> None:
    # Given a proxy that redirects /dicom-web/* to /pacs/dicom-web/* (same origin)
    qido = FakeQido(make_studies(12), root="/pacs/dicom-web")

    def redirect(request: httpx.Request) -> httpx.Response | None:
        path = request.url.raw_path.decode()
        if path.startswith("/dicom-web/"):
            return httpx.Response(301, headers={"location": "/pacs" + path})
        return None

    block = _probe(router(redirect, qido.handle), census=True)
    assert block.status is Status.SUCCESS and block.error is None
    assert block.dicomweb_root == "/dicom-web" and block.studies_listable is True
    assert block.counts is not None and block.counts.complete
    assert _numbers(block) == _truth(qido.studies)


def test_census_counts_identifier_shapes_and_refuses_absurd_numbers() -> None:
    def element(vr: str, *values: object) -> dict[str, object]:
        return {"vr": vr, "Value": list(values)}

    def study(n: int, patient_id: str, instances: object) -> dict[str, object]:
        return {
            "0020000D": element("UI", f"1.2.9.{n}"),
            "00100020": element("LO", patient_id),
            "00101000": element("LO", "OTHER1", "123-45-6789" if n == 3 else "X"),
            "00080080": element("LO", "Hospital"),
            "00080020": element("DA", "20200101"),
            "00201206": element("IS", 1),
            "00201208": element("IS", instances),
        }

    answer = [
        study(0, "123456789", 2),  # SSN-shaped PatientID
        study(1, "0123456789", "4"),  # 10 digits: military-ID-shaped
        study(2, "MRN7", 10**15),  # a hostile count past 12 digits: not a number
        study(3, "MRN8", "9999999999999"),  # the same as a string; SSN-shaped OtherPatientIDs
    ]

    series = [{"0020000E": element("UI", f"1.2.9.{n}.1"), "00201209": element("IS", n + 1)} for n in range(4)]

    def qido(request: httpx.Request) -> httpx.Response | None:
        level = request.url.path.removeprefix("/dicom-web/")
        if level not in ("studies", "series"):
            return None
        offset = int(request.url.params.get("offset", "0"))
        items = (answer if level == "studies" else series)[offset:]
        return httpx.Response(200, json=items, headers={"content-type": "application/dicom+json"})

    block = _probe(router(qido), census=True)
    assert block.sensitive is not None
    assert (block.sensitive.ssn_shaped, block.sensitive.military_id_shaped) == (2, 1)
    assert block.sensitive.studies_with_institution == 4
    # the absurd counts were not believed: series and instances were listed instead
    counts = block.counts
    assert counts is not None and counts.complete and counts.counted_from == "series-level"
    assert (counts.patients, counts.studies, counts.series, counts.instances) == (4, 4, 4, 10)
    dumped = block.model_dump_json()
    assert "123456789" not in dumped and "123-45-6789" not in dumped and "MRN7" not in dumped


def test_series_and_instances_from_lower_levels_when_the_study_keys_are_missing() -> None:
    qido = FakeQido(make_studies(9), with_counts=False)
    block = _probe(router(qido.handle), census=True)
    counts = block.counts
    assert counts is not None and counts.complete
    assert counts.series == sum(len(s.series) for s in qido.studies)
    assert counts.instances == sum(len(x) for s in qido.studies for x in s.series)
    assert counts.counted_from == "image-level"


def test_query_budget_cuts_the_census_to_lower_bounds() -> None:
    qido = FakeQido(make_studies(50), page_cap=4)
    block = _probe(router(qido.handle), census=True, max_queries=3)
    assert block.counts is not None and not block.counts.complete
    assert block.counts.queries == 3 and block.counts.studies == 12
    assert block.counts.incomplete_reason == "query budget spent"


def test_census_keeps_years_and_modalities_and_nothing_identifying() -> None:
    qido = FakeQido(make_studies(20, first_year=2015, years=5))
    block = _probe(router(qido.handle), census=True)
    assert block.study_dates is not None and block.study_dates.per_year == {
        str(y): 4 for y in range(2015, 2020)
    }
    assert block.modalities == {"CT": 20, "MR": 10}
    dumped = block.model_dump_json()
    for study in qido.studies:
        assert study.patient_id not in dumped and study.date not in dumped
    assert PATIENT_NAME_MARK not in dumped and "19700101" not in dumped


def test_default_credentials_only_with_the_option_once_and_only_documented_ones() -> None:
    wall = basic_auth_wall("orthanc", "orthanc", "Orthanc Secure Area", fake_orthanc())
    without = _probe(router(wall))
    assert without.product == "Orthanc" and without.auth_required is True
    assert without.default_credentials_accepted is None and wall.attempts == []  # type: ignore[attr-defined]

    accepted = _probe(router(wall), try_default_credentials=True)
    assert accepted.default_credentials_accepted is True
    assert accepted.default_credentials_account == "orthanc"
    assert accepted.version == "1.12.4"  # read with the default login, only to name the version
    assert wall.attempts == ["Basic b3J0aGFuYzpvcnRoYW5j"]  # type: ignore[attr-defined]
    rest = next(s for s in accepted.services if s.kind == "orthanc-rest")
    assert rest.version == "1.12.4" and "default_credentials_account" not in rest.model_dump()
    assert (
        "orthanc:orthanc" not in accepted.model_dump_json()
        and "b3J0aGFuYzpvcnRoYW5j" not in accepted.model_dump_json()
    )


def test_a_redirect_after_the_default_login_is_followed() -> None:
    def system_moved(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/system":
            return httpx.Response(301, headers={"location": "/system/"})
        if request.url.path == "/system/":
            return httpx.Response(200, json={"Version": "1.12.4", "ApiVersion": 22, "DicomAet": "ORTHANC"})
        return None

    wall = basic_auth_wall("orthanc", "orthanc", "Orthanc Secure Area", system_moved)
    block = _probe(router(wall), try_default_credentials=True)
    assert block.default_credentials_accepted is True and block.default_credentials_account == "orthanc"
    assert block.error is None and block.status is Status.SUCCESS


def test_a_default_login_past_the_request_budget_is_not_sent() -> None:
    wall = basic_auth_wall("orthanc", "orthanc", "Orthanc Secure Area", fake_orthanc())
    detection = _probe(router(wall)).requests
    block = _probe(router(wall), try_default_credentials=True, http_max_requests=detection)
    assert block.requests == detection and block.default_credentials_accepted is None
    assert wall.attempts == []  # type: ignore[attr-defined]
    assert "request budget" in (block.error or "") and block.product == "Orthanc"


def test_a_login_page_means_authentication_and_a_ui_shell_decides_nothing() -> None:
    login = (
        "<html><title>Hospital PACS - Login</title><form action=/login method=post>"
        "<input name=password type=password></form>"
    )
    walled = _probe(router(page("/", login)))
    assert walled.auth_required is True
    assert [(s.kind, s.auth_required) for s in walled.services] == [("pacs-viewer", True)]
    # UI shells are served to anyone: only a data service may say that no login is needed
    for handler in (page("/", OHIF_INDEX), page("/dcm4chee-arc/ui2/", DCM4CHEE_UI)):
        shell = _probe(router(handler))
        assert shell.services and shell.auth_required is None
    oe2 = "<html><title>Orthanc Explorer 2</title><script src=/ui/app/assets/index.js></script>"

    def api_walled(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/system":
            return httpx.Response(401, headers={"www-authenticate": 'Basic realm="Orthanc Secure Area"'})
        return None

    behind_keycloak = _probe(router(page("/ui/app/", oe2), api_walled))
    assert {s.kind for s in behind_keycloak.services} == {"orthanc-explorer-2", "orthanc-rest"}
    assert behind_keycloak.auth_required is True


def test_a_firewall_403_on_dicomweb_paths_is_no_service() -> None:
    def waf(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.startswith("/dicom-web"):
            return httpx.Response(403, text="Forbidden")
        return None

    block = _probe(router(waf))
    assert block.services == [] and block.auth_required is None and block.dicomweb_root is None


def test_garbage_labelled_dicom_json_past_the_cap_lists_nothing() -> None:
    def garbage(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/dicom-web/studies":
            body = b"[" + b"A" * 400_000
            return httpx.Response(200, content=body, headers={"content-type": "application/dicom+json"})
        return None

    block = _probe(router(garbage), census=True)
    assert block.services == [] and block.studies_listable is None and block.counts is None


def test_changed_password_means_default_credentials_refused() -> None:
    wall = basic_auth_wall("alice", "s3cret", "Orthanc Secure Area", fake_orthanc())
    block = _probe(router(wall), try_default_credentials=True)
    assert block.default_credentials_accepted is False
    assert block.default_credentials_account is None
    assert len(wall.attempts) == 1  # type: ignore[attr-defined]


def test_identifies_itself_and_sends_no_credentials_unasked() -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404)

    block = _probe(httpx.MockTransport(record))
    assert seen and all(r.headers["user-agent"] == USER_AGENT for r in seen)
    assert all("authorization" not in r.headers for r in seen)
    assert all(r.url.host == "127.0.0.1" for r in seen)
    assert block.requests == len(seen) <= _settings().http_max_requests


def test_request_budget_is_respected() -> None:
    seen: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(404)

    block = _probe(httpx.MockTransport(record), http_max_requests=4)
    assert len(seen) == 4 and block.requests == 4
    assert "request budget" in (block.error or "")


def test_redirects_stay_on_the_same_origin() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/":
            return httpx.Response(302, headers={"location": "http://elsewhere.example/"})
        return httpx.Response(404)

    seen_hosts: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen_hosts.append(request.url.host)
        return handle(request)

    block = _probe(httpx.MockTransport(record))
    assert set(seen_hosts) == {"127.0.0.1"}
    assert block.status_code == 302


def test_a_slow_server_ends_at_the_deadline() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200)

    started = time.monotonic()
    block = _probe(httpx.MockTransport(slow), timeout=0.5, deadline=1.5)
    assert time.monotonic() - started < 2.5
    assert block.status is Status.IO_TIMEOUT and not block.detected


def test_https_records_that_the_certificate_was_not_verified() -> None:
    seen: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.scheme)
        return httpx.Response(404)

    block = asyncio.run(
        probe_http(
            "::1",
            8443,
            tls=True,
            settings=_settings(),
            hostname="pacs.test",
            transport=httpx.MockTransport(record),
        )
    )
    assert block.scheme == "https" and block.tls_verified is False
    assert set(seen) == {"https"}


@pytest.mark.parametrize("error", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
def test_transport_errors_are_data(error: Exception) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    block = _probe(httpx.MockTransport(fail))
    assert not block.detected and block.status is not Status.SUCCESS and block.error


def test_the_silent_cap_check_is_skipped_when_the_budget_cannot_afford_it() -> None:
    qido = FakeQido(make_studies(23))
    affordable = _probe(router(qido.handle), census=True)
    assert affordable.counts is not None and affordable.counts.queries > 2  # listing + the two halves
    tight = _probe(router(FakeQido(make_studies(23)).handle), census=True, max_queries=5)
    assert tight.counts is not None and tight.counts.complete
    assert tight.counts.studies == 23 and tight.counts.queries == 2


def test_web_ports_are_known_but_never_scanned_by_default() -> None:
    settings = ScanSettings()
    assert {80, 443, 8042, 8080}.issubset(settings.web_ports)
    assert not set(settings.web_ports) & set(settings.ports)
    assert settings.try_default_credentials is False
    with pytest.raises(ValueError):
        ScanSettings(web_ports=[0])
