"""Certificates made in the test with `cryptography`, and `describe_certificate` read back against them.

`make_certificate` and `server_context` are shared by the other TLS tests (import them from
`probes.test_tls_certificates`): every certificate a test server shows is generated here, for
that run, on loopback.
"""

from __future__ import annotations

import hashlib
import ssl
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from pacsaudit.probes.tls import describe_certificate

KeyKind = Literal["rsa", "ec", "ed25519"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class TestCertificate:
    """A certificate and its key, as PEM files (for OpenSSL and Orthanc) and DER bytes (to compare)."""

    __test__ = False  # not a test class, despite the name

    cert_file: Path
    key_file: Path
    der: bytes
    key: PrivateKey
    name: x509.Name


def make_certificate(
    directory: Path,
    *,
    common_name: str = "pacs.test",
    key_kind: KeyKind = "rsa",
    key_bits: int = 2048,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    issuer: TestCertificate | None = None,
    ca: bool = False,
    stem: str | None = None,
) -> TestCertificate:
    """A certificate for `common_name`, self-signed unless `issuer` signs it, written under `directory`."""
    key: PrivateKey
    if key_kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=key_bits)
    elif key_kind == "ec":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        key = ed25519.Ed25519PrivateKey.generate()
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.name if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca or issuer is None, path_length=None), critical=True)
    )
    signer = issuer.key if issuer else key
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    cert = builder.sign(signer, algorithm)
    stem = stem or f"{common_name}-{key_kind}{key_bits}-{cert.serial_number % 10**8}"
    cert_file = directory / f"{stem}.crt"
    key_file = directory / f"{stem}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return TestCertificate(cert_file, key_file, cert.public_bytes(serialization.Encoding.DER), key, name)


def server_context(
    certificate: TestCertificate,
    *,
    tls_versions: tuple[str, str] | None = None,
    client_ca: TestCertificate | None = None,
    client_certificate: Literal["required", "optional"] | None = None,
) -> ssl.SSLContext:
    """A server context showing `certificate`; OpenSSL's security level 0, so weak keys load.

    `tls_versions` is a (minimum, maximum) pair of `ssl.TLSVersion` names, e.g. ("TLSv1", "TLSv1").
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers("ALL:@SECLEVEL=0")
    if tls_versions is not None:
        with warnings.catch_warnings():  # TLSVersion.TLSv1 and TLSv1_1 warn on access: a test asks for them
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion[tls_versions[0]]
            context.maximum_version = ssl.TLSVersion[tls_versions[1]]
    context.load_cert_chain(certificate.cert_file, certificate.key_file)
    if client_certificate is not None:
        context.verify_mode = ssl.CERT_REQUIRED if client_certificate == "required" else ssl.CERT_OPTIONAL
        context.load_verify_locations(cafile=(client_ca or certificate).cert_file)
    return context


# describe_certificate


def test_self_signed_rsa_certificate_is_described(tmp_path: Path) -> None:
    cert = make_certificate(tmp_path, common_name="archive.hospital.test")
    info = describe_certificate(cert.der)
    assert info.subject == "CN=archive.hospital.test"
    assert info.issuer == "CN=archive.hospital.test"
    assert info.self_signed is True
    assert info.expired is False
    assert (info.key_type, info.key_bits) == ("RSA", 2048)
    assert info.signature_algorithm == "rsa-with-sha256"
    assert info.sha256 == hashlib.sha256(cert.der).hexdigest()
    assert info.not_before is not None and info.not_before.endswith("Z")
    assert info.error is None


def test_expired_and_weak_key_are_facts(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    cert = make_certificate(
        tmp_path, key_bits=1024, not_before=now - timedelta(days=400), not_after=now - timedelta(days=35)
    )
    info = describe_certificate(cert.der)
    assert info.expired is True
    assert info.key_bits == 1024
    assert info.not_after == (now - timedelta(days=35)).replace(microsecond=0).isoformat().replace(
        "+00:00", "Z"
    )
    # `now` is the caller's: the same certificate, seen a year earlier, was valid.
    assert describe_certificate(cert.der, now=now - timedelta(days=100)).expired is False


def test_certificate_signed_by_a_ca_is_not_self_signed(tmp_path: Path) -> None:
    ca = make_certificate(tmp_path, common_name="Hospital Root CA", ca=True)
    leaf = make_certificate(tmp_path, common_name="pacs.hospital.test", issuer=ca, key_kind="ec")
    info = describe_certificate(leaf.der)
    assert info.self_signed is False
    assert info.issuer == "CN=Hospital Root CA"
    assert (info.key_type, info.key_bits) == ("EC secp256r1", 256)
    assert info.signature_algorithm == "rsa-with-sha256"


def test_same_name_but_foreign_signature_is_not_self_signed(tmp_path: Path) -> None:
    """A CA that named itself like its leaf: the names match, the leaf's key does not verify it."""
    ca = make_certificate(tmp_path, common_name="same.test", ca=True)
    leaf = make_certificate(tmp_path, common_name="same.test", issuer=ca)
    assert describe_certificate(leaf.der).self_signed is False


def test_ed25519_certificate(tmp_path: Path) -> None:
    info = describe_certificate(make_certificate(tmp_path, key_kind="ed25519").der)
    assert (info.key_type, info.key_bits, info.signature_algorithm) == ("Ed25519", 256, "ed25519")
    assert info.self_signed is True


def test_garbage_der_is_an_error_not_a_crash() -> None:
    info = describe_certificate(b"\x30\x82\x01\x00" + b"\xff" * 40)
    assert info.error == "certificate could not be parsed"
    assert info.subject is None
    assert info.sha256 == hashlib.sha256(b"\x30\x82\x01\x00" + b"\xff" * 40).hexdigest()


def test_a_huge_subject_is_bounded(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "x" * 60) for _ in range(100)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    info = describe_certificate(cert.public_bytes(serialization.Encoding.DER))
    assert info.subject is not None and len(info.subject) == 512 and info.subject.endswith("…")


@pytest.mark.parametrize(("key_kind", "bits"), [("rsa", 4096), ("rsa", 1024)])
def test_key_sizes(tmp_path: Path, key_kind: KeyKind, bits: int) -> None:
    assert (
        describe_certificate(make_certificate(tmp_path, key_kind=key_kind, key_bits=bits).der).key_bits
        == bits
    )
