"""Fake PACS web servers behind `httpx.MockTransport`: the shapes of products we cannot run here.

Each fake is a plain function of the request (no sockets), built from what the products'
documentation shows: dcm4chee-arc's UI and QIDO-RS under /dcm4chee-arc/aets/{AET}/rs, OHIF's
index page, Conquest's dgate CGI, and a QIDO-RS archive with the paging quirks real servers
have (a per-page cap, a silent total cap, offset ignored).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import httpx

Handler = Callable[[httpx.Request], httpx.Response]

PATIENT_NAME_MARK = "Doe^Secretname"
"""Put in every fake study's PatientName: it must never reach a result."""


@dataclass
class FakeStudy:
    uid: str
    patient_id: str
    date: str
    modalities: list[str]
    series: list[list[str]]
    """SOP Instance UIDs per series."""


def make_studies(count: int, *, first_year: int = 2010, years: int = 10) -> list[FakeStudy]:
    studies = []
    for n in range(count):
        series = [[f"1.2.3.{n}.{s}.{i}" for i in range(1 + (n + s) % 3)] for s in range(1 + n % 2)]
        studies.append(
            FakeStudy(
                uid=f"1.2.3.{n}",
                patient_id=f"PID{n // 2:04d}",
                date=f"{first_year + n % years}0{1 + n % 9}15",
                modalities=["CT", "MR"][: 1 + n % 2],
                series=series,
            )
        )
    return studies


def _element(vr: str, *values: object) -> dict[str, object]:
    return {"vr": vr, "Value": list(values)} if values else {"vr": vr}


@dataclass
class FakeQido:
    """QIDO-RS over `studies`, at `root`, with the quirks asked for."""

    studies: list[FakeStudy]
    root: str = "/dicom-web"
    page_cap: int | None = None
    """At most this many answers per request, whatever `limit` asks (the rest on later offsets)."""
    total_cap: int | None = None
    """Answers cut at this many before offset applies (what Orthanc's LimitFindResults does)."""
    ignore_offset: bool = False
    with_counts: bool = True
    """Fill NumberOfStudyRelatedSeries/Instances; without them, /series and /instances are needed."""
    requests: list[str] = field(default_factory=list)

    def _study(self, study: FakeStudy) -> dict[str, object]:
        out: dict[str, object] = {
            "0020000D": _element("UI", study.uid),
            "00100010": _element("PN", {"Alphabetic": PATIENT_NAME_MARK}),
            "00100020": _element("LO", study.patient_id),
            "00100030": _element("DA", "19700101"),
            "00080020": _element("DA", study.date),
            "00080061": _element("CS", *study.modalities),
        }
        if self.with_counts:
            out["00201206"] = _element("IS", len(study.series))
            out["00201208"] = _element("IS", sum(len(s) for s in study.series))
        return out

    def _page(self, items: list[dict[str, object]], query: dict[str, list[str]]) -> httpx.Response:
        if self.total_cap is not None:
            items = items[: self.total_cap]
        offset = 0 if self.ignore_offset else int(query.get("offset", ["0"])[0])
        limit = int(query.get("limit", [str(len(items))])[0])
        if self.page_cap is not None:
            limit = min(limit, self.page_cap)
        page = items[offset : offset + limit]
        if not page:
            return httpx.Response(204)
        return httpx.Response(200, json=page, headers={"content-type": "application/dicom+json"})

    def handle(self, request: httpx.Request) -> httpx.Response | None:
        path = request.url.path
        if not path.startswith(self.root + "/"):
            return None
        self.requests.append(str(request.url))
        query = parse_qs(request.url.query.decode())
        level = path[len(self.root) + 1 :]
        studies = self.studies
        if "StudyDate" in query:
            low, _, high = query["StudyDate"][0].partition("-")
            studies = [s for s in studies if (not low or s.date >= low) and (not high or s.date <= high)]
        if level == "studies":
            return self._page([self._study(s) for s in studies], query)
        if level == "series":
            series = [
                {"0020000E": _element("UI", f"{s.uid}.s{n}"), "00080060": _element("CS", s.modalities[0])}
                for s in studies
                for n, _ in enumerate(s.series)
            ]
            return self._page(series, query)
        if level == "instances":
            instances = [
                {"00080018": _element("UI", uid)} for s in studies for series in s.series for uid in series
            ]
            return self._page(instances, query)
        return httpx.Response(404)


def router(*handlers: Callable[[httpx.Request], httpx.Response | None]) -> httpx.MockTransport:
    """The first handler that answers wins; anything else is a 404."""

    def handle(request: httpx.Request) -> httpx.Response:
        for handler in handlers:
            response = handler(request)
            if response is not None:
                return response
        return httpx.Response(404, text="not found")

    return httpx.MockTransport(handle)


def page(path: str, html: str, status: int = 200) -> Callable[[httpx.Request], httpx.Response | None]:
    def handle(request: httpx.Request) -> httpx.Response | None:
        if request.url.path != path:
            return None
        return httpx.Response(status, text=html, headers={"content-type": "text/html"})

    return handle


def basic_auth_wall(
    user: str, password: str, realm: str, inner: Callable[[httpx.Request], httpx.Response | None]
) -> Callable[[httpx.Request], httpx.Response | None]:
    """Everything behind HTTP Basic, like Orthanc with AuthenticationEnabled; records every attempt."""
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    attempts: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response | None:
        given = request.headers.get("authorization")
        if given is not None:
            attempts.append(given)
        if given != expected:
            return httpx.Response(401, headers={"www-authenticate": f'Basic realm="{realm}"'})
        return inner(request)

    handle.attempts = attempts  # type: ignore[attr-defined]
    return handle


def fake_orthanc(
    version: str = "1.12.4", statistics: tuple[int, int, int, int] | None = (3, 5, 9, 20)
) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/":
            return httpx.Response(301, headers={"location": "app/explorer.html"})
        if path == "/app/explorer.html":
            return httpx.Response(
                200, text="<title>Orthanc Explorer</title>", headers={"content-type": "text/html"}
            )
        if path == "/system":
            return httpx.Response(
                200, json={"Name": "x", "Version": version, "ApiVersion": 22, "DicomAet": "ORTHANC"}
            )
        if path == "/statistics" and statistics is not None:
            keys = ("CountPatients", "CountStudies", "CountSeries", "CountInstances")
            return httpx.Response(200, json=dict(zip(keys, statistics, strict=True)) | {"TotalDiskSize": "1"})
        if path == "/studies":
            return httpx.Response(200, json=["3f1c0a8e-1d2b4c5d-6e7f8091-a2b3c4d5-e6f70819"])
        return httpx.Response(404, json={"HttpError": "Not Found"})

    return handle


def json_body(response: httpx.Response) -> object:
    return json.loads(response.content)
