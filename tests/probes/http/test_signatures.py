"""The signatures file and the pure matcher: plain values in, a match (or not) out."""

from __future__ import annotations

import json
import tomllib
from importlib import resources

import pytest
from pydantic import ValidationError

from pacsaudit.probes.http.signatures import (
    Observed,
    demands_auth,
    http_signatures,
    is_login_page,
    is_login_redirect,
    match_response,
    parse_http_signatures,
)

SIGNATURES = {s.id: s for s in http_signatures()}
ORTHANC_REALM = {"www-authenticate": 'Basic realm="Orthanc Secure Area"'}


def _json(path: str, document: object, status: int = 200, content_type: str = "application/json") -> Observed:
    return Observed(path, status, {"content-type": content_type}, json.dumps(document).encode())


def test_shipped_file_names_every_product_the_issue_asks_for_each_with_a_source() -> None:
    kinds = {s.kind for s in SIGNATURES.values()}
    assert {
        "orthanc-rest",
        "orthanc-explorer",
        "orthanc-explorer-2",
        "dicomweb",
        "dcm4chee-ui",
        "ohif",
    } <= kinds
    assert {"conquest-web", "pacs-viewer"} <= kinds
    assert all(len(s.source) > 20 for s in SIGNATURES.values())
    dicomweb_paths = {p for s in SIGNATURES.values() if s.kind == "dicomweb" for p in s.expanded_paths()}
    for root in ("/dicom-web", "/dicomweb", "/wado", "/dcm4chee-arc/aets/DCM4CHEE/rs"):
        assert f"{root}/studies?limit=1" in dicomweb_paths
    assert [s.id for s in SIGNATURES.values() if s.fallback] == ["pacs-viewer-generic"]


def test_default_credentials_are_only_documented_vendor_defaults() -> None:
    credentials = {
        (s.id, c.user, c.password, c.scheme) for s in SIGNATURES.values() for c in s.default_credentials
    }
    assert ("orthanc-rest", "orthanc", "orthanc", "basic") in credentials
    assert all(c.source for s in SIGNATURES.values() for c in s.default_credentials)
    # Only Orthanc's is HTTP Basic: dcm4chee's live behind a Keycloak login form (listed, not tried).
    assert {c[0] for c in credentials if c[3] == "basic"} == {"orthanc-rest"}


def test_orthanc_system_names_product_and_version() -> None:
    answer = _json("/system", {"Name": "x", "Version": "1.12.4", "ApiVersion": 24, "DicomAet": "ORTHANC"})
    found = match_response(SIGNATURES["orthanc-rest"], answer)
    assert found is not None and not found.auth_required
    assert found.version == "1.12.4"


def test_a_json_object_without_orthancs_keys_is_not_orthanc() -> None:
    answer = _json("/system", {"status": "ok", "version": "3"})
    assert match_response(SIGNATURES["orthanc-rest"], answer) is None


def test_orthanc_realm_attributes_a_401_to_orthanc_even_when_everything_is_401() -> None:
    answer = Observed("/system", 401, ORTHANC_REALM, b"")
    baseline = Observed("/pacsaudit-x", 401, ORTHANC_REALM, b"")
    found = match_response(SIGNATURES["orthanc-rest"], answer, baseline=baseline)
    assert found is not None and found.auth_required


def test_a_bare_403_or_a_401_without_a_challenge_is_no_service() -> None:
    # A firewall's 403 on /dicom-web/... (a random path 404) says nothing about DICOMweb
    dicomweb = SIGNATURES["dicomweb"]
    random_404 = Observed("/r", 404, {}, b"")
    firewall = Observed("/dicom-web/studies?limit=1", 403, {"content-type": "text/html"}, b"Forbidden")
    assert match_response(dicomweb, firewall, baseline=random_404) is None
    assert not demands_auth(firewall)
    bare_401 = Observed("/dicom-web/studies?limit=1", 401, {}, b"")
    assert match_response(dicomweb, bare_401, baseline=random_404) is None
    to_login = Observed("/dicom-web/studies?limit=1", 302, {"location": "/login?next=/dicom-web"}, b"")
    found = match_response(dicomweb, to_login, baseline=random_404)
    assert found is not None and found.auth_required
    # with the product's own mark, a 403 still belongs to it (dcm4chee's Bearer challenge)
    scope = {"www-authenticate": 'Bearer error="insufficient_scope"'}
    dcm4chee = Observed("/dcm4chee-arc/aets/DCM4CHEE/rs/studies?limit=1", 403, scope, b"")
    found = match_response(SIGNATURES["dcm4chee-dicomweb"], dcm4chee, baseline=random_404)
    assert found is not None and found.auth_required


LOGIN_PAGE = (
    b"<html><title>Hospital PACS - Login</title><form action=/login method=post>"
    b"<input name=user><input name=password type=password></form>"
)


def test_a_login_page_is_a_wall_not_an_open_service() -> None:
    page = Observed("/", 200, {"content-type": "text/html"}, LOGIN_PAGE)
    assert is_login_page(page) and demands_auth(page)
    found = match_response(SIGNATURES["pacs-viewer-generic"], page, baseline=Observed("/r", 404, {}, b""))
    assert found is not None and found.auth_required
    assert match_response(SIGNATURES["ohif"], page) is None  # no OHIF marker: a wall names no product
    keycloak = Observed("/", 200, {}, b'<form id="kc-form-login" action="/auth/realms/x/login-actions">')
    assert is_login_page(keycloak)
    viewer = Observed("/", 200, {}, b"<html><title>PACS</title><input type=text name=patient></html>")
    assert not is_login_page(viewer) and not demands_auth(viewer)
    assert not is_login_page(Observed("/", 401, {}, LOGIN_PAGE))  # a refusal, judged as one


def test_a_401_without_markers_counts_only_when_a_random_path_is_not_401() -> None:
    dicomweb = SIGNATURES["dicomweb"]
    answer = Observed("/dicom-web/studies?limit=1", 401, {"www-authenticate": "Basic realm=x"}, b"")
    assert match_response(dicomweb, answer) is None
    assert match_response(dicomweb, answer, baseline=Observed("/r", 401, {}, b"")) is None
    found = match_response(dicomweb, answer, baseline=Observed("/r", 404, {}, b""))
    assert found is not None and found.auth_required


def test_redirect_to_a_login_page_is_authentication() -> None:
    assert is_login_redirect(302, "https://idp/auth/realms/dcm4che/protocol/openid-connect/auth?x")
    assert is_login_redirect(303, "/login?next=/dicom-web")
    assert is_login_redirect(302, "/cas/login?service=x")
    assert is_login_redirect(302, "/portal/login.jsp")
    assert not is_login_redirect(302, "/app/explorer.html")
    assert not is_login_redirect(200, "/login")
    # whole path segments only: words inside other words, or in the query, are no login
    assert not is_login_redirect(301, "/authors/")
    assert not is_login_redirect(301, "/sso-news/today")
    assert not is_login_redirect(301, "/static/oauthlib-docs/")
    assert not is_login_redirect(302, "/viewer/?return=/login")
    answer = Observed("/dcm4chee-arc/ui2/", 302, {"location": "/auth/realms/dcm4che/x"}, b"")
    found = match_response(SIGNATURES["dcm4chee-ui"], answer, baseline=Observed("/r", 404, {}, b""))
    assert found is not None and found.auth_required


@pytest.mark.parametrize(
    ("status", "body", "content_type", "truncated", "expected"),
    [
        (200, b"[]", "application/dicom+json", False, True),
        (204, b"", "", False, True),
        (200, b'[{"0020000D": {"vr": "UI", "Value": ["1.2"]}}]', "application/dicom+json", False, True),
        (200, b'[{"studyId": "1"}]', "application/json", False, False),
        (200, b"<html>[]</html>", "text/html", False, False),
        # past the byte cap: the first dataset must decode and be DICOM JSON, the label is not enough
        (200, b'[{"0020000D": {"vr": "UI", "Value": ["1.2"]}}, {"0020', "application/dicom+json", True, True),
        (200, b'[ \n {"0020000D": {"vr": "UI"}} , {"00', "application/dicom+json", True, True),
        (200, b'[{"0020000D": {"vr": "UI", "Va', "application/dicom+json", True, False),
        (200, b"[" + b"A" * 1000, "application/dicom+json", True, False),
        (200, b'[{"studyId": "1"}, {"x', "application/dicom+json", True, False),
        (200, b'[{"0020000D": "1.2"}, {"x', "application/dicom+json", True, False),
        (200, b"[{}, {}, {", "application/dicom+json", True, False),
        (200, b'[{"0020000D": {"vr": "UI", "Value": ["1.2"]}}, {"0020', "application/json", True, False),
        (404, b"[]", "application/dicom+json", False, False),
    ],
)
def test_qido_answers_are_recognised_by_shape(
    status: int, body: bytes, content_type: str, truncated: bool, expected: bool
) -> None:
    answer = Observed("/dicom-web/studies?limit=1", status, {"content-type": content_type}, body, truncated)
    assert (match_response(SIGNATURES["dicomweb"], answer) is not None) is expected


def test_a_catch_all_server_matches_no_path_specific_signature() -> None:
    page = b"<html><title>Orthanc Explorer</title></html>"
    answer = Observed("/app/explorer.html", 200, {}, page)
    assert match_response(SIGNATURES["orthanc-explorer"], answer) is not None
    catch_all = Observed("/pacsaudit-1234", 200, {}, page)
    assert match_response(SIGNATURES["orthanc-explorer"], answer, baseline=catch_all) is None
    assert (
        match_response(SIGNATURES["orthanc-explorer"], answer, baseline=Observed("/r", 404, {}, b""))
        is not None
    )


def test_viewer_markers_and_versions() -> None:
    ohif = Observed("/", 200, {}, b'<html><head><title>OHIF Viewer</title><script src="app-config.js">')
    assert match_response(SIGNATURES["ohif"], ohif) is not None
    conquest = Observed("/cgi-bin/dgate", 200, {}, b"<title>Conquest DICOM server - version 1.5.0c</title>")
    found = match_response(SIGNATURES["conquest-web"], conquest)
    assert found is not None and found.version == "1.5.0c"
    plain = Observed("/", 200, {}, b"<html><title>Welcome to nginx!</title></html>")
    assert all(match_response(s, plain) is None for s in SIGNATURES.values())


def test_malformed_signature_files_are_refused() -> None:
    document = tomllib.loads(
        (resources.files("pacsaudit") / "data" / "http_signatures.toml").read_text("utf-8")
    )
    assert len(parse_http_signatures(document)) == len(SIGNATURES)
    first = dict(document["signature"][0])
    with pytest.raises(ValueError, match="duplicate"):
        parse_http_signatures({"signature": [first, first]})
    with pytest.raises(ValidationError):
        parse_http_signatures({"signature": [{**first, "source": ""}]})
    with pytest.raises(ValidationError):
        parse_http_signatures({"signature": [{**first, "version_regex": "no group"}]})
    with pytest.raises(ValidationError):
        parse_http_signatures({"signature": [{**first, "surprise": 1}]})
    with pytest.raises(ValueError, match="requires unknown"):
        parse_http_signatures({"signature": [{**first, "requires": ["nope"]}]})
