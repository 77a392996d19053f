"""Builds the configured signer, TSA and trust roots from plain settings, once per process.

create_app() calls ``configure(app.config)``; sign_approval(), finalize() and verify()
then use ``get_context()``.  Settings read (defaults in ``DEFAULTS``):

SIGNING_BACKEND            "local" (built-in PKI) | "pkcs12" | "pkcs11"
SIGNING_PKCS12_PATH, SIGNING_PKCS12_PASSPHRASE
SIGNING_PKCS11_MODULE, SIGNING_PKCS11_TOKEN_LABEL, SIGNING_PKCS11_KEY_LABEL, SIGNING_PKCS11_PIN
SIGNING_PKCS11_CERT_PATH   PEM certificate of the HSM key when it is not stored in the token
SIGNING_CHAIN_PATH         PEM bundle of issuer certificates to embed (PKCS#11)
SIGNING_TRUST_ROOTS        PEM files of extra trusted roots (the local root is always trusted)
SIGNING_CERT_AATL          the administrator's word that the certificate chains to an AATL root (help page)
TSA_URL                    empty: the built-in TSA, in-process
TSA_USERNAME, TSA_PASSWORD, TSA_TIMEOUT, TSA_ACCREDITED_URLS
TSA_CERT_CHAIN_PATH        PEM: the external TSA's certificate, then its issuers
TSA_POLICY_OID             policy asked for from (and required of) the external TSA
TSA_ACCREDITED_CERTS       PEM files of accredited TSA certificates or their issuing CAs
PDF_MAX_BYTES, PKI_DIR, PUBLIC_BASE_URL, AGENCY_NAME, SERVICE_NAME, SIGNING_CERT_YEARS
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from portal.config import DEFAULTS as PORTAL_DEFAULTS

from . import pki as local_pki
from .context import SigningContext
from .revocation import LocalCrlSource, LocalFirstFetcherBackend
from .signer import KeyInMemorySigner, Pkcs11Signer, Signer, load_pkcs12_signer
from .tsa import HttpTsa, LocalTsa, TimestampClient, to_asn1_cert

# The signing keys of the portal's settings; the same defaults, so that the service also runs
# outside Flask (bench/, the verify CLI) with a plain mapping.
SIGNING_KEYS = (
    "SIGNING_BACKEND", "SIGNING_PKCS12_PATH", "SIGNING_PKCS12_PASSPHRASE", "SIGNING_PKCS11_MODULE",
    "SIGNING_PKCS11_TOKEN_LABEL", "SIGNING_PKCS11_KEY_LABEL", "SIGNING_PKCS11_PIN", "SIGNING_PKCS11_CERT_PATH",
    "SIGNING_CHAIN_PATH", "SIGNING_TRUST_ROOTS", "SIGNING_CERT_YEARS", "SIGNING_CERT_AATL", "TSA_URL",
    "TSA_USERNAME", "TSA_PASSWORD", "TSA_TIMEOUT", "TSA_ACCREDITED_URLS", "TSA_CERT_CHAIN_PATH", "TSA_POLICY_OID",
    "TSA_ACCREDITED_CERTS",
    "PDF_MAX_BYTES", "PUBLIC_BASE_URL", "AGENCY_NAME", "SERVICE_NAME",
)
DEFAULTS: dict[str, Any] = {key: PORTAL_DEFAULTS[key] for key in SIGNING_KEYS} | {"PKI_DIR": "instance/pki"}

_lock = threading.Lock()
_configured: tuple[tuple[Any, ...], SigningContext] | None = None


_settings: dict[str, Any] | None = None


def _forget_context() -> None:
    # HSM and HTTP sessions do not survive fork(); a worker rebuilds from the same settings.
    global _configured, _lock
    _configured, _lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_context)


class SigningNotConfigured(RuntimeError):
    """get_context() was called before configure()."""


def _setting(settings: Mapping[str, Any], key: str) -> Any:
    return settings.get(key, DEFAULTS[key])


def _cache_key(settings: Mapping[str, Any]) -> tuple[Any, ...]:
    # The PKI's generation: a certificate renewed by another process makes this one reload.
    return (
        *(tuple(value) if isinstance(value, list) else value
          for value in (_setting(settings, key) for key in DEFAULTS)),
        local_pki.generation(_setting(settings, "PKI_DIR")),
    )


def local_crl_source(pki: local_pki.LocalPki) -> LocalCrlSource:
    """Serve our own CRL URL from the PKI directory, without HTTP."""
    own_url = pki.crl_url

    def source(url: str) -> bytes | None:
        return local_pki.current_crl(pki) if url == own_url else None

    return source


class PkiNotInitialised(RuntimeError):
    """The built-in PKI is not there and may not be created here (PostgreSQL: `flask init` creates it)."""


def pki_exists(settings: Mapping[str, Any]) -> bool:
    return (Path(str(_setting(settings, "PKI_DIR"))) / local_pki._METADATA_FILE).exists()


def ensure_pki(settings: Mapping[str, Any], *, create: bool = True) -> local_pki.LocalPki:
    """Load the built-in PKI in PKI_DIR, creating it first when missing and `create`.

    Raises PkiNotInitialised when it is missing and `create` is false.
    """
    if not create and not pki_exists(settings):
        raise PkiNotInitialised(f"内蔵 PKI（{_setting(settings, 'PKI_DIR')}）がありません。"
                                "flask --app portal:create_app init で作成してください。")
    return local_pki.ensure_local_pki(
        _setting(settings, "PKI_DIR"),
        agency_name=_setting(settings, "AGENCY_NAME") or _setting(settings, "SERVICE_NAME"),
        service_name=_setting(settings, "SERVICE_NAME"),
        base_url=_setting(settings, "PUBLIC_BASE_URL"),
        signing_years=int(_setting(settings, "SIGNING_CERT_YEARS")),
    )


def _read_pem_certs(path: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(Path(path).read_bytes()) if path else []


def _build_signer(settings: Mapping[str, Any], pki: local_pki.LocalPki) -> Signer:
    backend = _setting(settings, "SIGNING_BACKEND")
    if backend == "local":
        return KeyInMemorySigner(
            pki.signing_key, pki.signing_cert, [pki.root_cert], description="内蔵 PKI（instance/pki）"
        )
    if backend == "pkcs12":
        return load_pkcs12_signer(
            _setting(settings, "SIGNING_PKCS12_PATH"), _setting(settings, "SIGNING_PKCS12_PASSPHRASE")
        )
    if backend == "pkcs11":
        cert_path = _setting(settings, "SIGNING_PKCS11_CERT_PATH")
        return Pkcs11Signer(
            module=_setting(settings, "SIGNING_PKCS11_MODULE"),
            token_label=_setting(settings, "SIGNING_PKCS11_TOKEN_LABEL"),
            key_label=_setting(settings, "SIGNING_PKCS11_KEY_LABEL"),
            pin=str(_setting(settings, "SIGNING_PKCS11_PIN")),
            certificate=_read_pem_certs(cert_path)[0] if cert_path else None,
            chain=_read_pem_certs(_setting(settings, "SIGNING_CHAIN_PATH")),
        )
    raise ValueError(f"SIGNING_BACKEND must be local, pkcs12 or pkcs11, not {backend!r}")


def _build_tsa(settings: Mapping[str, Any], pki: local_pki.LocalPki) -> TimestampClient:
    url = _setting(settings, "TSA_URL")
    if url:
        return HttpTsa(
            url,
            username=_setting(settings, "TSA_USERNAME") or None,
            password=_setting(settings, "TSA_PASSWORD") or None,
            timeout=float(_setting(settings, "TSA_TIMEOUT")),
            policy_oid=_setting(settings, "TSA_POLICY_OID") or None,
            chain=_read_pem_certs(_setting(settings, "TSA_CERT_CHAIN_PATH")),
        )
    return builtin_tsa(pki)


def builtin_tsa(pki: local_pki.LocalPki) -> LocalTsa:
    """The in-process TSA of the local PKI."""
    return LocalTsa(pki.tsa_cert, pki.tsa_key, policy_oid=local_pki.TSA_POLICY_OID.dotted_string, chain=[pki.root_cert])


def _trust_roots(settings: Mapping[str, Any], pki: local_pki.LocalPki, signer: Signer) -> list[asn1_x509.Certificate]:
    roots = [to_asn1_cert(pki.root_cert)]
    for path in _setting(settings, "SIGNING_TRUST_ROOTS"):
        roots.extend(to_asn1_cert(cert) for cert in _read_pem_certs(path))
    if _setting(settings, "SIGNING_BACKEND") == "pkcs12":
        # The administrator chose this file; a self-signed root shipped inside it is
        # the CA they intend to sign under.
        roots.extend(cert for cert in signer.chain if cert.self_signed == "maybe" or cert.self_signed == "yes")
    return roots


def build_context(settings: Mapping[str, Any]) -> SigningContext:
    """A fresh SigningContext for ``settings`` (creates the local PKI on first start).

    Raises SigningKeyUnavailable for an unreadable PKCS#12 file, ValueError for an
    unknown SIGNING_BACKEND.
    """
    # Several servers on one PostgreSQL must share one CA and its keys: never made here on the fly.
    pki = ensure_pki(settings, create=not str(settings.get("DATABASE_URL") or "").startswith("postgresql"))
    signer = _build_signer(settings, pki)
    crl_source = local_crl_source(pki)
    timeout = float(_setting(settings, "TSA_TIMEOUT"))
    context = SigningContext(
        signer=signer,
        tsa=_build_tsa(settings, pki),
        trust_roots=_trust_roots(settings, pki, signer),
        fetcher_backend_factory=lambda: LocalFirstFetcherBackend(crl_source, per_request_timeout=timeout),
        max_bytes=int(_setting(settings, "PDF_MAX_BYTES")),
        pki=pki,
    )
    return context


def configure(settings: Mapping[str, Any]) -> SigningContext:
    """Build the process-wide context, or return the cached one for equal settings."""
    global _configured, _settings
    key = _cache_key(settings)
    with _lock:
        if _configured is None or _configured[0] != key:
            _configured = (key, build_context(settings))
            _settings = {name: settings.get(name, DEFAULTS[name]) for name in DEFAULTS}
        return _configured[1]


def get_context() -> SigningContext:
    """The context for the current Flask app's settings, else the one set by configure().

    Raises SigningNotConfigured outside an app context when configure() has not run.
    """
    from flask import current_app, has_app_context

    if has_app_context():
        return configure(current_app.config)
    if _configured is not None:
        return _configured[1]
    if _settings is not None:  # after fork()
        return configure(_settings)
    raise SigningNotConfigured("portal.signing.service.configure() has not been called")


@dataclass(frozen=True)
class SigningStatus:
    """What the admin page shows about the signing setup."""

    signer_subject: str
    signer_description: str
    signer_not_after: dt.datetime
    tsa_description: str
    tsa_url: str | None
    tsa_not_after: dt.datetime | None
    tsa_subject: str | None
    is_tsa_accredited: bool
    root_subject: str
    root_not_after: dt.datetime
    certificates: tuple[Any, ...]
    warnings: tuple[str, ...]


def _tsa_certificate(context: SigningContext) -> asn1_x509.Certificate | None:
    tsa = context.tsa
    if isinstance(tsa, LocalTsa):
        return tsa.tsa_cert
    if isinstance(tsa, HttpTsa):
        return tsa.certificate
    return None


def is_accredited_certificate(cert: asn1_x509.Certificate, accredited: list[x509.Certificate]) -> bool:
    """``cert`` is one of ``accredited`` or was issued (and signed) by one of them."""
    candidate = x509.load_der_x509_certificate(cert.dump())
    for listed in accredited:
        if candidate == listed:
            return True
        if candidate.issuer == listed.subject:
            try:
                candidate.verify_directly_issued_by(listed)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return True
    return False


def _accreditation_warnings(settings: Mapping[str, Any], context: SigningContext) -> list[str]:
    tsa_url = _setting(settings, "TSA_URL") or None
    urls = [u.rstrip("/") for u in _setting(settings, "TSA_ACCREDITED_URLS")]
    if tsa_url is None or (urls and tsa_url.rstrip("/") not in urls):
        return [
            "使用中のタイムスタンプ局は、設定された認定タイムスタンプ局の一覧（TSA_ACCREDITED_URLS）に含まれていません。"
            "電子帳簿保存法の真実性の要件を認定タイムスタンプで満たす場合は、認定事業者の TSA を設定してください。"
        ]
    accredited = [cert for path in _setting(settings, "TSA_ACCREDITED_CERTS") for cert in _read_pem_certs(path)]
    if not accredited:
        return [
            "認定タイムスタンプ局の証明書一覧（TSA_ACCREDITED_CERTS）が設定されていないため、"
            "使用中のタイムスタンプ局の証明書が認定事業者のものか確認できません。"
        ]
    cert = _tsa_certificate(context)
    if cert is None:
        return [
            "タイムスタンプ局の証明書がまだ分かりません（TSA_CERT_CHAIN_PATH を設定するか、"
            "タイムスタンプを一度取得すると確認できます）。"
        ]
    if not is_accredited_certificate(cert, accredited):
        return [
            f"タイムスタンプ局の証明書（{cert.subject.human_friendly}、シリアル {cert.serial_number:x}）は、"
            "認定タイムスタンプ局の証明書一覧（TSA_ACCREDITED_CERTS）に含まれていません。"
        ]
    return []


def signing_status(settings: Mapping[str, Any], context: SigningContext, *, now: dt.datetime,
                   revocations: list[local_pki.RevokedEntry] | None = None) -> SigningStatus:
    """Summarise certificates, TSA and their expiry, with warnings for the admin page.

    Raises SigningKeyUnavailable when the HSM cannot be opened to read its certificate.
    """
    from .lifecycle import certificate_overview

    pki = context.pki
    assert pki is not None
    cert = context.signer.certificate
    signer_not_after = cert["tbs_certificate"]["validity"]["not_after"].native
    tsa_url = _setting(settings, "TSA_URL") or None
    tsa = context.tsa
    tsa_cert = _tsa_certificate(context)
    tsa_not_after = tsa_cert["tbs_certificate"]["validity"]["not_after"].native if tsa_cert is not None else None
    warnings = _accreditation_warnings(settings, context)
    is_accredited = not warnings
    if _setting(settings, "SIGNING_BACKEND") == "local":
        warnings.append(
            "内蔵 PKI の自己署名ルートで署名しています。Acrobat Reader で「署名は有効です」と表示させるには、"
            "相手方がルート証明書を信頼済みとして登録する必要があります（docs/signing.md 参照）。"
        )
        if _setting(settings, "SIGNING_CERT_AATL"):
            warnings.append("SIGNING_CERT_AATL が設定されていますが、内蔵 PKI で署名しています。"
                            "事業者向けのヘルプは内蔵ルートを信頼する手順を案内します。")
    certificates = certificate_overview(pki, revocations or [], now=now)
    warnings.extend(line.warning for line in certificates if line.warning)
    for label, not_after, is_builtin in (
        ("署名用証明書", signer_not_after, _setting(settings, "SIGNING_BACKEND") == "local"),
        ("タイムスタンプ局の証明書", tsa_not_after, isinstance(tsa, LocalTsa)),
    ):
        if not is_builtin and not_after is not None and not_after - now < dt.timedelta(days=90):
            warnings.append(f"{label}の有効期限（{not_after:%Y-%m-%d}）が 90 日以内です。更新してください。")
    return SigningStatus(
        signer_subject=cert.subject.human_friendly,
        signer_description=context.signer.description,
        signer_not_after=signer_not_after,
        tsa_description=tsa.description,
        tsa_url=tsa_url,
        tsa_not_after=tsa_not_after,
        tsa_subject=tsa_cert.subject.human_friendly if tsa_cert is not None else None,
        is_tsa_accredited=is_accredited,
        root_subject=pki.root_cert.subject.rfc4514_string(),
        root_not_after=pki.root_cert.not_valid_after_utc,
        certificates=tuple(certificates),
        warnings=tuple(warnings),
    )


# ---------------------------------------------------------------- what Acrobat Reader will show


@dataclass(frozen=True)
class AcrobatOutlook:
    """What a vendor's Acrobat Reader shows for the portal's signatures, for the help page.

    kind: "builtin"  — the certificate comes from the built-in root: 「署名の有効性は不明です」 until the
                       vendor trusts that root (served at /pki/root.crt);
          "aatl"     — the administrator declared (SIGNING_CERT_AATL) that the certificate chains to a root
                       on the Adobe Approved Trust List: 「署名は有効です」 with no set-up;
          "other"    — another CA (e.g. the agency's own): unknown until its root is trusted.
    """

    kind: str
    issuer: str  # the issuing CA's name, as Acrobat's certificate viewer shows it ("" when unknown)
    root_fingerprint: str = ""  # SHA-256 of the built-in root, "AB:CD:…", to compare before trusting it

    @property
    def is_trusted_by_default(self) -> bool:
        return self.kind == "aatl"


def _configured_signing_certificate(settings: Mapping[str, Any]) -> x509.Certificate | None:
    """The signing certificate, read without opening an HSM (a public page must never try the PIN)."""
    backend = _setting(settings, "SIGNING_BACKEND")
    if backend == "pkcs11":
        path = _setting(settings, "SIGNING_PKCS11_CERT_PATH")
        return _read_pem_certs(path)[0] if path else None
    return x509.load_der_x509_certificate(configure(settings).signer.certificate.dump())


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def acrobat_outlook(settings: Mapping[str, Any]) -> AcrobatOutlook:
    """Whether Acrobat Reader trusts the configured signing certificate out of the box.

    The portal cannot read Adobe's trust list: a certificate issued by the built-in root is known to be
    untrusted; any other counts as trusted only when SIGNING_CERT_AATL says so.
    Raises SigningKeyUnavailable for an unreadable PKCS#12 file.
    """
    from cryptography.hazmat.primitives import hashes

    pki = configure(settings).pki
    assert pki is not None
    root = pki.root_cert
    fingerprint = ":".join(f"{b:02X}" for b in root.fingerprint(hashes.SHA256()))
    builtin = AcrobatOutlook("builtin", _readable_name(root.subject), fingerprint)
    if _setting(settings, "SIGNING_BACKEND") == "local":
        return builtin
    cert = _configured_signing_certificate(settings)
    if cert is not None and _issued_by(cert, root):
        return builtin
    issuer = _readable_name(cert.issuer) if cert is not None else ""
    return AcrobatOutlook("aatl" if _setting(settings, "SIGNING_CERT_AATL") else "other", issuer)


def _readable_name(name: x509.Name) -> str:
    """「O CN」 as Acrobat's certificate viewer lists them, e.g. 「○○県 けいやくポータル ルート認証局」."""
    organization = " ".join(str(a.value) for a in name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    common_name = " ".join(str(a.value) for a in name.get_attributes_for_oid(NameOID.COMMON_NAME))
    if organization and common_name.startswith(organization):  # 「岡山県 電子契約ルート認証局」, not 岡山県 twice
        organization = ""
    return " ".join(part for part in (organization, common_name) if part) or name.rfc4514_string()
