"""The built-in PKI: a root CA, the service signing certificate and the TSA certificate.

Created once in ``instance/pki/`` with the ``cryptography`` package.  Every issued
certificate names a CRL distribution point that the portal itself serves
(``{PUBLIC_BASE_URL}/pki/crl/root.crl``), so finalize() and validators can fetch and
embed revocation data.  Private keys are written with mode 0600 and never served.

The signing and TSA certificates are renewed before they expire (renew_certificate()): a
new key and certificate under the same root, written beside the old ones; ``pki.json``
names the current pair and is replaced atomically, so a reader sees the old pair or the
new one, never half of each.  Old certificates stay in the directory (old signatures
embed them; the admin page lists them); the old private key is deleted.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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
_LOCK_FILE = ".lock"
_crl_lock = threading.RLock()
RENEWABLE = (SIGNING_NAME, TSA_NAME)


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

    def current(self, role: str) -> x509.Certificate:
        """The certificate in use for ``role`` (root, signing, tsa). Raises KeyError otherwise."""
        return {ROOT_NAME: self.root_cert, SIGNING_NAME: self.signing_cert, TSA_NAME: self.tsa_cert}[role]


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
    years: int = 0,
    lifetime: dt.timedelta | None = None,
    is_tsa: bool = False,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """Certify ``public_key`` with the local root (signing or TSA profile).

    Valid for ``lifetime`` (else ``years``) from ``now``, never beyond the root.
    Used for the built-in keys and for a key generated inside an HSM.
    """
    now = now or _now()
    not_after = min(now + (lifetime or dt.timedelta(days=365 * years)), pki.root_cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organization))
        .issuer_name(pki.root_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
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
    with _locked(path):  # several processes may start at once on a fresh instance: one creates it
        if (path / _METADATA_FILE).exists():
            return load_local_pki(path)
        return _create_local_pki(path, agency_name=agency_name, service_name=service_name, base_url=base_url,
                                 signing_years=signing_years, tsa_years=tsa_years)


def _create_local_pki(path: Path, *, agency_name: str, service_name: str, base_url: str, signing_years: int,
                      tsa_years: int) -> LocalPki:
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
    _write_metadata(path, {"base_url": base_url, "current": {SIGNING_NAME: SIGNING_NAME, TSA_NAME: TSA_NAME}})
    return load_local_pki(path)


def _write_metadata(path: Path, metadata: dict) -> None:
    tmp = path / f"{_METADATA_FILE}.tmp"
    tmp.write_text(json.dumps(metadata))
    tmp.replace(path / _METADATA_FILE)


def generation(directory: str | os.PathLike[str]) -> int:
    """Changes whenever a certificate is renewed (processes reload their signing context then)."""
    try:
        return (Path(directory) / _METADATA_FILE).stat().st_mtime_ns
    except FileNotFoundError:
        return 0


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One renewal at a time across processes (the periodic job also holds a lease)."""
    with (directory / _LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def renew_certificate(
    pki: LocalPki,
    role: str,
    *,
    years: int = 0,
    lifetime: dt.timedelta | None = None,
    now: dt.datetime | None = None,
    replacing: int | None = None,
) -> LocalPki | None:
    """Give ``role`` (signing or tsa) a new RSA key and certificate under the same root.

    The subject stays the same; the old certificate is kept in the directory and its
    private key deleted.  With ``replacing`` (a serial number), nothing happens unless that
    certificate is still the current one (else None is returned): two processes renewing
    at once renew once.  Returns the reloaded PKI.
    Raises ValueError for a role other than signing or tsa.
    """
    if role not in RENEWABLE:
        raise ValueError(f"only {RENEWABLE} can be renewed, not {role!r}")
    now = now or _now()
    with _locked(pki.directory):
        current = load_local_pki(pki.directory)
        if replacing is not None and current.current(role).serial_number != replacing:
            return None
        metadata = json.loads((pki.directory / _METADATA_FILE).read_text())
        names = metadata.setdefault("current", {SIGNING_NAME: SIGNING_NAME, TSA_NAME: TSA_NAME})
        old_cert = current.current(role)
        subject = old_cert.subject
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = issue_certificate(
            current,
            key.public_key(),
            common_name=str(subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value),
            organization=str(subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value),
            years=years,
            lifetime=lifetime,
            is_tsa=role == TSA_NAME,
            now=now,
        )
        stem = f"{role}-{now:%Y%m%d%H%M%S}-{cert.serial_number:x}"
        (pki.directory / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_private(pki.directory / f"{stem}.key", _key_pem(key))
        old_stem = names.get(role, role)
        names[role] = stem
        _write_metadata(pki.directory, metadata)
        (pki.directory / f"{old_stem}.key").unlink(missing_ok=True)
    return load_local_pki(pki.directory)


@dataclass(frozen=True)
class CertificateRecord:
    """One certificate of the built-in PKI, current or retired."""

    role: str
    file_name: str
    certificate: x509.Certificate
    is_current: bool

    @property
    def serial_hex(self) -> str:
        return f"{self.certificate.serial_number:x}"

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()


def list_certificates(pki: LocalPki) -> list[CertificateRecord]:
    """Every certificate in the PKI directory: root, then current, then retired (newest first)."""
    current = {pki.root_cert.serial_number, pki.signing_cert.serial_number, pki.tsa_cert.serial_number}
    records = []
    for path in sorted(pki.directory.glob("*.crt")):
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        role = path.stem.split("-", 1)[0]
        records.append(CertificateRecord(role, path.name, cert, cert.serial_number in current))
    order = {ROOT_NAME: 0, SIGNING_NAME: 1, TSA_NAME: 2}
    records.sort(key=lambda r: (order.get(r.role, 3), not r.is_current,
                                -r.certificate.not_valid_before_utc.timestamp()))
    return records


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
    names = {SIGNING_NAME: SIGNING_NAME, TSA_NAME: TSA_NAME, ROOT_NAME: ROOT_NAME} | metadata.get("current", {})

    def cert(role: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((path / f"{names[role]}.crt").read_bytes())

    return LocalPki(
        directory=path,
        base_url=metadata["base_url"],
        root_cert=cert(ROOT_NAME),
        root_key=_load_key(path / f"{ROOT_NAME}.key"),
        signing_cert=cert(SIGNING_NAME),
        signing_key=_load_key(path / f"{names[SIGNING_NAME]}.key"),
        tsa_cert=cert(TSA_NAME),
        tsa_key=_load_key(path / f"{names[TSA_NAME]}.key"),
    )


@dataclass(frozen=True)
class RevokedEntry:
    """A revoked certificate as the CRL states it: the revocation time never moves."""

    serial_number: int
    revoked_at: dt.datetime
    reason: x509.ReasonFlags | None = None


RevocationSource = Callable[[], Sequence[RevokedEntry]]
_revocation_sources: dict[Path, RevocationSource] = {}


def register_revocation_source(directory: str | os.PathLike[str], source: RevocationSource) -> None:
    """Where the CRL of the PKI in ``directory`` reads its entries (the revocations table)."""
    _revocation_sources[Path(directory).resolve()] = source


def issue_crl(pki: LocalPki, revoked: Sequence[RevokedEntry], *, now: dt.datetime | None = None) -> bytes:
    """Issue and store the root's CRL listing ``revoked`` with their own revocation times."""
    now = now or _now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.root_cert.subject)
        .last_update(now)
        .next_update(now + CRL_VALIDITY)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(pki.root_key.public_key()),
            critical=False,
        )
        .add_extension(x509.CRLNumber(int(now.timestamp() * 1000)), critical=False)
    )
    for entry in revoked:
        revoked_builder = (
            x509.RevokedCertificateBuilder().serial_number(entry.serial_number).revocation_date(entry.revoked_at)
        )
        if entry.reason is not None and entry.reason is not x509.ReasonFlags.unspecified:
            revoked_builder = revoked_builder.add_extension(x509.CRLReason(entry.reason), critical=False)
        builder = builder.add_revoked_certificate(revoked_builder.build())
    der = builder.sign(pki.root_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    crl_path = pki.directory / "crl" / f"{ROOT_NAME}.crl"
    crl_path.parent.mkdir(exist_ok=True)
    # A temporary name of its own per writer (threads and processes), then an atomic rename.
    tmp = crl_path.with_name(f".{crl_path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    with _crl_lock:
        tmp.write_bytes(der)
        tmp.replace(crl_path)
    return der


def entries_of(crl_der: bytes) -> list[RevokedEntry]:
    """The revoked entries of a CRL, as they were issued."""
    entries = []
    for revoked in x509.load_der_x509_crl(crl_der):
        try:
            reason = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
        except x509.ExtensionNotFound:
            reason = None
        entries.append(RevokedEntry(revoked.serial_number, revoked.revocation_date_utc, reason))
    return entries


def current_crl(pki: LocalPki, *, now: dt.datetime | None = None) -> bytes:
    """The root's CRL in DER, re-issued when older than CRL_REFRESH_AFTER.

    A fresh CRL matters: validators want revocation data issued after the signing
    time, so a CRL is never reused for long.  Its entries come from the registered
    revocation source (the portal's revocations table); without one (a script using a
    plain settings mapping) they are carried over from the last CRL issued.
    """
    now = now or _now()
    crl_path = pki.directory / "crl" / f"{ROOT_NAME}.crl"
    with _crl_lock:
        existing_der = crl_path.read_bytes() if crl_path.exists() else None
        if existing_der is not None:
            age = now - x509.load_der_x509_crl(existing_der).last_update_utc
            if dt.timedelta(0) <= age < CRL_REFRESH_AFTER:
                return existing_der
        source = _revocation_sources.get(pki.directory.resolve())
        revoked = list(source()) if source is not None else entries_of(existing_der) if existing_der else []
        return issue_crl(pki, revoked, now=now)


def certificate_der(pki: LocalPki, name: str) -> bytes:
    """DER of a public certificate in use, by name (root, signing, tsa).

    Raises KeyError for any other name.
    """
    return pki.current(name).public_bytes(serialization.Encoding.DER)
