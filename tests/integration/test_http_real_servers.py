"""The HTTP probe against real Orthanc (Debian `orthanc` + `orthanc-dicomweb`) on loopback: open,
capped, and behind authentication, loaded with the synthetic archive whose census is known."""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from archives import GeneratedArchive, loaded_orthanc
from servers import LOOPBACK, RunningServer, orthanc, orthanc_binary, orthanc_dicomweb_plugin

from pacsaudit.config import ScanSettings
from pacsaudit.model import HttpBlock, Status
from pacsaudit.probes.http import probe_http
from scanning import missing_software

pytestmark = pytest.mark.integration

LIMIT_FIND_RESULTS = 30


def _plugin() -> str:
    if orthanc_binary() is None:
        missing_software("Orthanc is not installed")
    plugin = orthanc_dicomweb_plugin()
    if plugin is None:
        missing_software("the Orthanc DICOMweb plugin (Debian orthanc-dicomweb) is not installed")
    return str(plugin)


@pytest.fixture(scope="module")
def orthanc_dicomweb(
    tmp_path_factory: pytest.TempPathFactory, small_archive: GeneratedArchive
) -> Iterator[RunningServer]:
    """Orthanc with the DICOMweb plugin and HTTP open (no authentication), holding the small archive."""
    plugin = _plugin()
    tmp = tmp_path_factory.mktemp("orthanc-dicomweb")
    with loaded_orthanc(
        tmp, small_archive.files, always_allow_find=False, extra_config={"Plugins": [plugin]}
    ) as server:
        yield server


@pytest.fixture(scope="module")
def orthanc_dicomweb_capped(
    tmp_path_factory: pytest.TempPathFactory, small_archive: GeneratedArchive
) -> Iterator[RunningServer]:
    """The same, with ``LimitFindResults`` cutting every QIDO-RS answer silently."""
    plugin = _plugin()
    tmp = tmp_path_factory.mktemp("orthanc-dicomweb-capped")
    with loaded_orthanc(
        tmp,
        small_archive.files,
        always_allow_find=False,
        limit_find_results=LIMIT_FIND_RESULTS,
        extra_config={"Plugins": [plugin]},
    ) as server:
        yield server


def _orthanc_with_users(tmp: Path, users: dict[str, str]) -> Any:
    if orthanc_binary() is None:
        missing_software("Orthanc is not installed")
    return orthanc(tmp, extra_config={"AuthenticationEnabled": True, "RegisteredUsers": users})


def _probe(
    server: RunningServer, transport: httpx.AsyncBaseTransport | None = None, **options: Any
) -> HttpBlock:
    assert server.http_port is not None
    settings = ScanSettings(**({"timeout": 5.0, "deadline": 20.0, "query_pause": 0.0} | options))
    return asyncio.run(
        probe_http(LOOPBACK, server.http_port, tls=False, settings=settings, transport=transport)
    )


def _system_version(server: RunningServer, auth: str | None = None) -> str:
    request = urllib.request.Request(f"http://{LOOPBACK}:{server.http_port}/system")
    if auth:
        request.add_header("Authorization", auth)
    with urllib.request.urlopen(request, timeout=10) as response:
        version: str = json.loads(response.read())["Version"]
    return version


class StatisticsClosed(httpx.AsyncHTTPTransport):
    """The real network, with Orthanc's /statistics hidden (as a reverse proxy exposing only
    /dicom-web would): the census has to page through QIDO-RS."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/statistics":
            return httpx.Response(404)
        return await super().handle_async_request(request)


def test_open_orthanc_is_named_and_counted_from_statistics(
    orthanc_dicomweb: RunningServer, small_archive: GeneratedArchive
) -> None:
    truth = small_archive.truth
    block = _probe(orthanc_dicomweb, census=True)
    assert block.status is Status.SUCCESS and block.detected
    assert block.product == "Orthanc" and block.version == _system_version(orthanc_dicomweb)
    kinds = {s.kind for s in block.services}
    assert {"orthanc-rest", "orthanc-statistics", "orthanc-studies", "orthanc-explorer", "dicomweb"} <= kinds
    assert "orthanc-explorer-2" not in kinds  # the plugin is not loaded
    assert block.dicomweb_root == "/dicom-web"
    assert block.auth_required is False and block.studies_listable is True
    assert block.counts_source == "orthanc-statistics"
    assert block.counts is not None and block.counts.complete
    counts = block.counts
    assert (counts.patients, counts.studies, counts.series, counts.instances) == (
        truth.patients,
        truth.studies,
        truth.series,
        truth.instances,
    )


def test_qido_rs_census_on_real_orthanc_equals_what_was_loaded(
    orthanc_dicomweb: RunningServer, small_archive: GeneratedArchive
) -> None:
    truth = small_archive.truth
    block = _probe(orthanc_dicomweb, transport=StatisticsClosed(), census=True, max_answers_per_query=40)
    assert block.counts_source == "qido-rs"
    counts = block.counts
    assert counts is not None and counts.complete, counts
    assert (counts.patients, counts.studies, counts.series, counts.instances) == (
        truth.patients,
        truth.studies,
        truth.series,
        truth.instances,
    )
    assert counts.counted_from == "study-keys" and not counts.capped
    assert block.modalities == truth.modalities
    assert block.study_dates is not None
    assert block.study_dates.per_year == {str(y): n for y, n in sorted(truth.study_years.items())}
    assert block.study_dates.undated == truth.undated_studies
    # the C-FIND census's tally: the same identifier shapes as over DICOM
    assert block.sensitive is not None
    assert block.sensitive.ssn_shaped == truth.ssn_shaped_patients
    assert block.sensitive.military_id_shaped == truth.military_shaped_patients
    assert block.sensitive.studies_with_institution == truth.studies_with_institution
    assert block.qido_page_limit is None  # limit=40 asked and honoured: no per-page limit below it
    dumped = block.model_dump_json()
    assert not any(value in dumped for value in truth.identifying_values if len(value) > 3)


def test_silently_capped_orthanc_gives_lower_bounds_past_the_cap(
    orthanc_dicomweb_capped: RunningServer, small_archive: GeneratedArchive
) -> None:
    truth = small_archive.truth
    block = _probe(orthanc_dicomweb_capped, transport=StatisticsClosed(), census=True)
    counts = block.counts
    assert counts is not None and counts.capped and counts.split == ["study-date"]
    assert counts.cap is not None and LIMIT_FIND_RESULTS <= counts.cap <= LIMIT_FIND_RESULTS + 1
    assert counts.cap < counts.studies <= truth.studies  # the StudyDate split reached past the cap
    assert counts.complete is (counts.studies == truth.studies)
    if not counts.complete:
        assert counts.incomplete_reason
    if truth.undated_studies:  # no StudyDate range reaches them past a proven cap
        assert not counts.complete
        assert "undated studies past the cap" in (counts.incomplete_reason or "")
    assert block.qido_page_limit is None  # a cut total, not a per-page limit


def test_orthanc_with_authentication_and_its_docker_default_login(tmp_path: Path) -> None:
    with _orthanc_with_users(tmp_path, {"orthanc": "orthanc"}) as server:
        plain = _probe(server, census=True)
        assert plain.product == "Orthanc" and plain.auth_required is True
        assert plain.studies_listable is False and plain.counts is None
        assert plain.default_credentials_accepted is None and plain.version is None

        tried = _probe(server, try_default_credentials=True)
        assert tried.default_credentials_accepted is True
        assert tried.default_credentials_account == "orthanc"
        assert tried.version == _system_version(server, auth="Basic b3J0aGFuYzpvcnRoYW5j")
        assert "orthanc:orthanc" not in tried.model_dump_json()


def test_orthanc_with_a_real_password_refuses_the_default_login(tmp_path: Path) -> None:
    with _orthanc_with_users(tmp_path, {"alice": "Correct-Horse-Battery"}) as server:
        block = _probe(server, try_default_credentials=True)
        assert block.product == "Orthanc" and block.auth_required is True
        assert block.default_credentials_accepted is False
        assert block.default_credentials_account is None
        assert "Correct-Horse" not in block.model_dump_json()


def _self_signed_pem(directory: Path) -> Path:
    """A throwaway self-signed certificate and its key in one PEM file, as Orthanc's SslCertificate wants."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pacsaudit-test.invalid")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = directory / "orthanc-https.pem"
    pem.write_bytes(
        certificate.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return pem


async def _tls_relay(pem: Path, target_port: int) -> asyncio.Server:
    """A TLS-terminating reverse proxy on loopback in front of Orthanc's plain HTTP port.

    Orthanc's own HTTPS cannot be used here: Debian 12's Orthanc 1.10.1 segfaults in its
    civetweb worker on the first HTTPS request (observed with RSA and EC certificates).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pem)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(LOOPBACK, target_port)
        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))

    return await asyncio.start_server(handle, LOOPBACK, 0, ssl=context)


def test_orthanc_behind_https_with_a_self_signed_certificate(
    orthanc_dicomweb: RunningServer, small_archive: GeneratedArchive, tmp_path: Path
) -> None:
    pem = _self_signed_pem(tmp_path)
    assert orthanc_dicomweb.http_port is not None

    async def go() -> tuple[HttpBlock, HttpBlock]:
        relay = await _tls_relay(pem, orthanc_dicomweb.http_port or 0)
        port = relay.sockets[0].getsockname()[1]
        try:
            settings = ScanSettings(timeout=5.0, deadline=20.0, query_pause=0.0, census=True)
            secure = await probe_http(LOOPBACK, port, tls=True, settings=settings, hostname="pacs.test")
            plain = await probe_http(LOOPBACK, port, tls=False, settings=ScanSettings(timeout=1.0))
            return secure, plain
        finally:
            relay.close()

    secure, plain = asyncio.run(go())
    assert secure.status is Status.SUCCESS and secure.scheme == "https"
    assert secure.tls_verified is False  # self-signed, described anyway
    assert secure.product == "Orthanc" and secure.dicomweb_root == "/dicom-web"
    assert secure.counts is not None and secure.counts.studies == small_archive.truth.studies
    # plain HTTP to a TLS port: a clear status for this endpoint, not a crash
    assert plain.status is not Status.SUCCESS and not plain.detected and plain.error
