"""The built-in PKI: a root CA, the service signing certificate and the TSA certificate.

Created once in ``instance/pki/`` with the ``cryptography`` package.  Every issued
certificate names a CRL distribution point that the portal itself serves
(``{PUBLIC_BASE_URL}/pki/crl/root.crl``), so finalize() and validators can fetch and
embed revocation data.  Private keys are written with mode 0600 and never served.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Our own TSA policy OID.  We hold no IANA enterprise number, so it lives under the
# UUID arc 2.25 (ITU-T X.667), which needs no registration and cannot collide.
TSA_POLICY_OID = x509.ObjectIdentifier("2.25.62794722814153724306154674385395377289")

ROOT_NAME = "root"
SIGNING_NAME = "signing"
TSA_NAME = "tsa"
CRL_REFRESH_AFTER = dt.timedelta(minutes=10)
CRL_VALIDITY = dt.timedelta(days=7)
_METADATA_FILE = "pki.json"
_crl_lock = threading.Lock()


@dataclass(frozen=True)
class LocalPki:
    """Loaded certificates and keys of the built-in PKI."""

    directory: Path
    base_url: str
    root_cert: x509.Certificate
    root_key: rsa.RSAPrivateKey
    signing_cert: x509.Certificate
    signing_key: rsa.RSAPrivateKey
    tsa_cert: x509.Certificate
    tsa_key: rsa.RSAPrivateKey

    @property
    def crl_url(self) -> str:
        return crl_url(self.base_url)


def crl_url(base_url: str, name: str = ROOT_NAME) -> str:
    """The URL at which the portal serves the CRL issued by CA ``name``."""
    return f"{base_url.rstrip('/')}/pki/crl/{name}.crl"


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def _key_pem(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _build_root(organization: str, now: dt.datetime) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = _name(f"{organization} 電子契約ルート認証局", organization)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365 * 25))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue_certificate(
    pki: LocalPki,
    public_key: CertificatePublicKeyTypes,
    *,
    common_name: str,
    organization: str,
    years: int,
    is_tsa: bool = False,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """Certify ``public_key`` with the local root (signing or TSA profile).

    Used for the built-in keys and for a key generated inside an HSM.
    """
    now = now or _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organization))
        .issuer_name(pki.root_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(pki.root_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        full_name=[x509.UniformResourceIdentifier(pki.crl_url)],
                        relative_name=None,
                        reasons=None,
                        crl_issuer=None,
                    )
                ]
            ),
            critical=False,
        )
    )
    if is_tsa:
        # RFC 3161 §2.3: the TSA certificate carries only id-kp-timeStamping, critical.
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
        ).add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(TSA_POLICY_OID, None)]),
            critical=False,
        )
    return builder.sign(pki.root_key, hashes.SHA256())


def ensure_local_pki(
    directory: str | os.PathLike[str],
    *,
    agency_name: str,
    service_name: str,
    base_url: str,
    signing_years: int = 2,
    tsa_years: int = 5,
) -> LocalPki:
    """Create the local PKI in ``directory`` unless it exists, and load it.

    Raises ValueError if ``signing_years`` is outside 1–3.
    """
    if not 1 <= signing_years <= 3:
        raise ValueError("signing_years must be between 1 and 3")
    path = Path(directory)
    if (path / _METADATA_FILE).exists():
        return load_local_pki(path)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = _now()
    root_cert, root_key = _build_root(agency_name, now)
    signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    # A partial object is enough to issue: only root and base_url are read.
    issuer = LocalPki(path, base_url, root_cert, root_key, root_cert, root_key, root_cert, root_key)
    signing_cert = issue_certificate(
        issuer,
        signing_key.public_key(),
        common_name=service_name,
        organization=agency_name,
        years=signing_years,
        now=now,
    )
    tsa_cert = issue_certificate(
        issuer,
        tsa_key.public_key(),
        common_name=f"{service_name} タイムスタンプ局",
        organization=agency_name,
        years=tsa_years,
        is_tsa=True,
        now=now,
    )
    for name, cert, key in (
        (ROOT_NAME, root_cert, root_key),
        (SIGNING_NAME, signing_cert, signing_key),
        (TSA_NAME, tsa_cert, tsa_key),
    ):
        (path / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_private(path / f"{name}.key", _key_pem(key))
    (path / "crl").mkdir(exist_ok=True)
    # Written last: its presence marks a complete PKI.
    (path / _METADATA_FILE).write_text(json.dumps({"base_url": base_url}))
    return load_local_pki(path)


def _load_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} is not an RSA key")
    return key


def load_local_pki(directory: str | os.PathLike[str]) -> LocalPki:
    """Load an existing local PKI.

    Raises FileNotFoundError if it has not been created.
    """
    path = Path(directory)
    metadata = json.loads((path / _METADATA_FILE).read_text())

    def cert(name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((path / f"{name}.crt").read_bytes())

    return LocalPki(
        directory=path,
        base_url=metadata["base_url"],
        root_cert=cert(ROOT_NAME),
        root_key=_load_key(path / f"{ROOT_NAME}.key"),
        signing_cert=cert(SIGNING_NAME),
        signing_key=_load_key(path / f"{SIGNING_NAME}.key"),
        tsa_cert=cert(TSA_NAME),
        tsa_key=_load_key(path / f"{TSA_NAME}.key"),
    )


def current_crl(pki: LocalPki, *, now: dt.datetime | None = None) -> bytes:
    """The root's CRL in DER, re-issued when older than CRL_REFRESH_AFTER.

    Revoked serials are read from ``revoked.txt`` (one hexadecimal serial a line).
    A fresh CRL matters: validators want revocation data issued after the
    signing time, so a CRL is never reused for long.
    """
    now = now or _now()
    crl_path = pki.directory / "crl" / f"{ROOT_NAME}.crl"
    with _crl_lock:
        if crl_path.exists():
            existing = x509.load_der_x509_crl(crl_path.read_bytes())
            age = now - existing.last_update_utc
            if dt.timedelta(0) <= age < CRL_REFRESH_AFTER:
                return crl_path.read_bytes()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(pki.root_cert.subject)
            .last_update(now)
            .next_update(now + CRL_VALIDITY)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(pki.root_key.public_key()),
                critical=False,
            )
            .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
        )
        for serial in _revoked_serials(pki.directory):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
            )
        der = builder.sign(pki.root_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
        crl_path.parent.mkdir(exist_ok=True)
        tmp = crl_path.with_suffix(".tmp")
        tmp.write_bytes(der)
        tmp.replace(crl_path)
        return der


def _revoked_serials(directory: Path) -> list[int]:
    path = directory / "revoked.txt"
    if not path.exists():
        return []
    return [int(line, 16) for line in path.read_text().split() if line]


def certificate_der(pki: LocalPki, name: str) -> bytes:
    """DER of a public certificate by name (root, signing, tsa).

    Raises KeyError for any other name.
    """
    certs = {ROOT_NAME: pki.root_cert, SIGNING_NAME: pki.signing_cert, TSA_NAME: pki.tsa_cert}
    return certs[name].public_bytes(serialization.Encoding.DER)
