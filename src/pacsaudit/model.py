"""The one result model every stage fills in and every output serialises.

One `EndpointResult` per (ip, port): flat at the top, one block per protocol (`dicom`, `http`,
`tls`) and one `attribution` block (who holds the address). Errors are data (a closed `Status`
vocabulary plus a free-text `error`), never an exception escaping a scan. Every contract key is
always present in the output, `null` when unknown.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AddressScope",
    "AssociationOutcome",
    "Attribution",
    "CertificateInfo",
    "DicomBlock",
    "EndpointResult",
    "Evidence",
    "FindRefusal",
    "HttpBlock",
    "HttpService",
    "RejectInfo",
    "SensitiveShapes",
    "ServiceEvidence",
    "Services",
    "Status",
    "StudyCounts",
    "StudyYears",
    "TlsBlock",
    "assign",
]


class Status(StrEnum):
    """What happened to one endpoint, in the spirit of zgrab2's status vocabulary."""

    SUCCESS = "success"
    """The peer answered in DICOM (A-ASSOCIATE-AC, -RJ or A-ABORT), or on a web port in HTTP."""
    CONNECTION_REFUSED = "connection-refused"
    """The TCP connect was refused: the port is closed."""
    CONNECTION_TIMEOUT = "connection-timeout"
    """The TCP connect did not complete in time: filtered, or no host."""
    CONNECTION_CLOSED = "connection-closed"
    """The peer accepted the connection, then closed it without a byte."""
    CONNECTION_RESET = "connection-reset"
    """The peer reset the connection."""
    UNREACHABLE = "unreachable"
    """The network said there is no route to the host or network."""
    NAME_ERROR = "name-error"
    """A hostname target did not resolve."""
    IO_TIMEOUT = "io-timeout"
    """Connected, but no complete answer came before the timeout or the deadline."""
    PROTOCOL_ERROR = "protocol-error"
    """The answer looked like DICOM but broke the protocol (absurd length, truncated, unknown PDU)."""
    NOT_DICOM = "not-dicom"
    """The answer was another protocol (HTTP, TLS, SSH, a banner...)."""
    UNKNOWN_ERROR = "unknown-error"
    """Anything else; `error` says what."""


AssociationOutcome = Literal["accepted", "rejected", "aborted"]


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Fact(BaseModel):
    """A small block that never changes once made: immutable, so one instance may be shared by
    many results (a sweep's endpoints mostly share the same services matrix and attribution)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def assign(model: BaseModel, values: dict[str, Any]) -> None:
    """Set several fields at once, exactly as `setattr` on each would (assignment is not
    validated here), without pydantic's per-attribute hook: the sweep's hot path sets a dozen
    fields per endpoint. Names must be fields (checked while assertions are on)."""
    assert values.keys() <= type(model).__pydantic_fields__.keys(), set(values)
    model.__dict__.update(values)
    model.__pydantic_fields_set__.update(values)


class RejectInfo(_Block):
    """An A-ASSOCIATE-RJ as sent, with the numbers decoded to words (PS3.8 9.3.4)."""

    result: int
    source: int
    reason: int
    result_text: str
    source_text: str
    reason_text: str


Evidence = Literal["verified", "negotiated", "refused", "not-accepted"]
"""How a service's availability is known: a real operation succeeded (`verified`), only its
presentation context was accepted (`negotiated`), the operation was refused (`refused`), or
the context itself was rejected (`not-accepted`)."""


class Services(_Fact):
    """Which DIMSE services a stranger's association may use (PS3.4 Q/R and Storage)."""

    find: bool | None = None
    move: bool | None = None
    get: bool | None = None
    store: bool | None = None


class ServiceEvidence(_Fact):
    find: Evidence | None = None
    move: Evidence | None = None
    get: Evidence | None = None
    store: Evidence | None = None


class FindRefusal(_Block):
    """How a server that accepted the C-FIND context refused the operation itself."""

    kind: Literal["status", "abort", "closed", "timeout"]
    status: int | None = None
    """The C-FIND-RSP status, when the refusal was a status."""
    status_text: str | None = None
    abort_source: int | None = None
    abort_reason: int | None = None


class StudyCounts(_Block):
    """What a stranger can enumerate. With `complete` false, every number is a lower bound."""

    patients: int | None = None
    studies: int | None = None
    series: int | None = None
    instances: int | None = None
    complete: bool = False
    queries: int = 0
    """C-FIND requests sent to obtain these numbers."""
    capped: bool = False
    """The server cut a C-FIND answer short (a result cap), so the queries were split."""
    cap: int | None = None
    """The largest answer seen from a capped query: the server's cap, as far as it shows."""
    split: list[Literal["study-date", "patient-birth-date", "patient-id"]] = Field(default_factory=list)
    """The keys used to split capped queries, in the order they were needed."""
    counted_from: Literal["study-keys", "series-level", "image-level"] | None = None
    """Where series/instance numbers came from: the NumberOf... keys, or hierarchical queries."""
    incomplete_reason: str | None = None


class StudyYears(_Block):
    """Study dates reduced to years (HIPAA Safe Harbor keeps only the year)."""

    min: int | None = None
    max: int | None = None
    per_year: dict[str, int] = Field(default_factory=dict)
    undated: int = 0


class SensitiveShapes(_Block):
    """Counts of identifiers *shaped* like sensitive numbers: shapes, not proof; never the values."""

    ssn_shaped: int = 0
    """Distinct patients whose PatientID or OtherPatientIDs looks like a valid US SSN."""
    military_id_shaped: int = 0
    """Distinct patients whose PatientID or OtherPatientIDs is 10 digits (DoD ID-like; many MRNs too)."""
    studies_with_institution: int = 0
    """Studies whose answer carried a non-empty InstitutionName."""


class DicomBlock(_Block):
    """What the DICOM upper-layer probe learnt about an endpoint."""

    status: Status = Status.SUCCESS
    error: str | None = None
    detected: bool = False
    """A well-formed A-ASSOCIATE-AC, A-ASSOCIATE-RJ or A-ABORT came back."""
    association: AssociationOutcome | None = None
    """Best outcome over all attempts: `accepted` if any title pair was accepted."""
    reject: RejectInfo | None = None
    """The rejection a stranger (random called and calling AE titles) got, if rejected."""
    abort_source: int | None = None
    abort_reason: int | None = None
    transient: bool = False
    """The peer rejected as busy (result 2, e.g. local limit exceeded), even after a polite retry."""
    open_to_any_ae: bool | None = None
    """Accepted an association with a random called and a random calling AE title."""
    called_ae_check: bool | None = None
    calling_ae_check: bool | None = None
    accepted_called_ae: str | None = None
    accepted_calling_ae: str | None = None
    ae_attempts: int = 0
    """Associations requested in total (the stranger test, dictionary titles, retries)."""
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    product: str | None = None
    vendor: str | None = None
    version: str | None = None
    echo: bool | None = None
    """A C-ECHO over the accepted association returned Success."""
    max_pdu_length: int | None = None
    accepted_contexts: list[str] = Field(default_factory=list)
    """Abstract syntax UIDs of the presentation contexts the peer accepted."""
    services: Services | None = None
    """Set once an association was accepted: which services its contexts allow."""
    services_evidence: ServiceEvidence | None = None
    find_refusal: FindRefusal | None = None
    counts: StudyCounts | None = None
    """With `--census`: what a stranger can enumerate through C-FIND."""
    modalities: dict[str, int] | None = None
    """With `--census`: studies per modality (a study counts once for each modality in it)."""
    study_dates: StudyYears | None = None
    sensitive: SensitiveShapes | None = None


class HttpService(_Block):
    """One PACS-related web service found on an HTTP(S) endpoint (a signature matched)."""

    kind: str
    """What answered: `orthanc-rest`, `orthanc-explorer`, `dicomweb`, `dcm4chee-ui`, `ohif`, ..."""
    path: str
    status_code: int | None = None
    auth_required: bool | None = None
    product: str | None = None
    version: str | None = None
    vendor: str | None = None
    signature: str | None = None
    """The id of the signature that matched (`pacsaudit/data/http_signatures.toml`)."""
    lists_studies: bool | None = None
    """This service's answer proved that a stranger can list studies."""


class HttpBlock(_Block):
    """What the HTTP(S) probe learnt: PACS web front ends, DICOMweb, and what a stranger may list."""

    status: Status = Status.SUCCESS
    error: str | None = None
    detected: bool = False
    """An HTTP server answered."""
    scheme: Literal["http", "https"] | None = None
    status_code: int | None = None
    """The status of `GET /`."""
    server_header: str | None = None
    product: str | None = None
    vendor: str | None = None
    version: str | None = None
    auth_required: bool | None = None
    """Every PACS data service found (REST API, QIDO-RS, statistics) demanded authentication; `false`: one
    did not. A UI alone never makes it `false` (a page shell says nothing about the data behind it): `null`
    then, unless the UI or `/` asked for credentials (a challenge, a login redirect, a login page)."""
    dicomweb_root: str | None = None
    """The QIDO-RS root that answered, if any (e.g. `/dicom-web`)."""
    studies_listable: bool | None = None
    """A stranger could list studies (QIDO-RS or a REST API)."""
    default_credentials_accepted: bool | None = None
    """With `--try-default-credentials`: a vendor-documented default login worked."""
    services: list[HttpService] = Field(default_factory=list)
    counts: StudyCounts | None = None
    """With `--census`: what a stranger can enumerate over HTTP."""
    counts_source: Literal["orthanc-statistics", "qido-rs"] | None = None
    """Where `counts` came from (`queries` counts the HTTP requests it took)."""
    modalities: dict[str, int] | None = None
    """With `--census` over QIDO-RS: studies per modality (ModalitiesInStudy)."""
    study_dates: StudyYears | None = None
    """With `--census` over QIDO-RS: study years only, never a full date."""
    sensitive: SensitiveShapes | None = None
    """With `--census` over QIDO-RS: identifier shapes (SSN-like, military-ID-like), counted as for C-FIND."""
    qido_page_limit: int | None = None
    """With `--census` over QIDO-RS: the most answers the server gave per page when fewer than asked
    and more followed (a per-page limit: paging goes past it, the counts stay complete)."""
    tls_verified: bool | None = None
    """HTTPS only: always `false`, the certificate is not verified (the `tls` block describes it)."""
    default_credentials_account: str | None = None
    """The vendor-default account that was accepted, if any (never a password)."""
    requests: int = 0
    """HTTP requests sent to this endpoint (detection, census and credentials together)."""
    bytes_read: int = 0
    """Response body bytes read, every read bounded by a cap."""


class CertificateInfo(_Block):
    """The peer's leaf certificate, read from its DER bytes (never trusted, only described)."""

    subject: str | None = None
    issuer: str | None = None
    not_before: str | None = None
    not_after: str | None = None
    self_signed: bool | None = None
    expired: bool | None = None
    key_type: str | None = None
    key_bits: int | None = None
    signature_algorithm: str | None = None
    """e.g. `rsa-with-sha256`, `ecdsa-with-sha384`, `ed25519`; the dotted OID when unnamed."""
    sha256: str | None = None
    """SHA-256 of the DER bytes, lowercase hex: the certificate's fingerprint."""
    error: str | None = None
    """Why the DER bytes could not be read (fully or in part); the fields above stay `null` then."""


class TlsBlock(_Block):
    """What a TLS handshake (verification off, old versions allowed) showed about the endpoint."""

    status: Status = Status.SUCCESS
    error: str | None = None
    detected: bool = False
    """A TLS handshake completed (or failed only for want of a client certificate)."""
    version: str | None = None
    """As OpenSSL names it: `TLSv1`, `TLSv1.1`, `TLSv1.2`, `TLSv1.3`."""
    cipher: str | None = None
    cipher_bits: int | None = None
    sni: str | None = None
    """The server name sent in the ClientHello (hostname targets only; none for an IP)."""
    alert: str | None = None
    """The TLS alert the server ended the handshake with (`certificate_required`, `handshake_failure`...)."""
    client_certificate_requested: bool | None = None
    """The server sent a CertificateRequest (asks for a client certificate, perhaps optionally)."""
    client_certificate_required: bool | None = None
    """The server refused to go on without a client certificate (mutual TLS)."""
    certificate: CertificateInfo | None = None
    handshake_ms: float | None = None


AddressScope = Literal[
    "public", "private", "loopback", "link-local", "shared", "multicast", "reserved", "unresolved"
]
"""What kind of address a target is (RFC 6890 special-purpose ranges; `shared` is RFC 6598)."""


class Attribution(_Fact):
    """Who holds the address, from offline data: registry country, and AS from a user's MMDB."""

    scope: AddressScope
    country: str | None = None
    """ISO 3166-1 alpha-2 country the registry assigned the address to (null if none)."""
    asn: int | None = None
    as_org: str | None = None


class EndpointResult(_Block):
    """One JSON line: everything pacsaudit knows about one (ip, port)."""

    ip: str
    port: int
    hostname: str | None = None
    status: Status
    error: str | None = None
    elapsed_ms: float
    """Wall time from the first packet to the last, for this endpoint."""
    timestamp: str
    """When the endpoint's probe started, ISO 8601 UTC."""
    attribution: Attribution | None = None
    dicom: DicomBlock | None = None
    http: HttpBlock | None = None
    tls: TlsBlock | None = None
