"""Signing keys behind one Protocol: a key in memory (local PKI, PKCS#12) or in an HSM.

pyhanko's ``SimpleSigner`` re-parses its DER key on every signature (~38 ms for
RSA-2048 with key validation), so ``CachedKeySigner`` keeps the parsed key for the
life of the process.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from pyhanko.sign.general import get_pyca_cryptography_hash
from pyhanko.sign.signers import Signer as PyhankoSigner
from pyhanko.sign.signers.pdf_cms import SimpleSigner
from pyhanko_certvalidator.registry import SimpleCertificateStore

from .errors import SigningKeyUnavailable
from .tsa import to_asn1_cert


class Signer(Protocol):
    """A configured signing key with its certificate chain."""

    @property
    def certificate(self) -> asn1_x509.Certificate:
        """The signer's certificate."""

    @property
    def chain(self) -> list[asn1_x509.Certificate]:
        """Issuer certificates to embed (intermediates and root)."""

    @property
    def description(self) -> str:
        """A human label of the key's location, for the admin page."""

    def pyhanko_signer(self) -> PyhankoSigner:
        """The pyhanko Signer producing the CMS signature.

        Raises SigningKeyUnavailable when the key cannot be used.
        """


class CachedKeySigner(SimpleSigner):
    """A SimpleSigner that signs with one parsed ``cryptography`` key."""

    def __init__(
        self,
        private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
        signing_cert: asn1_x509.Certificate,
        chain: list[asn1_x509.Certificate],
    ) -> None:
        der = private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        super().__init__(
            signing_cert=signing_cert,
            signing_key=asn1_keys.PrivateKeyInfo.load(der),
            cert_registry=SimpleCertificateStore.from_certs(chain),
        )
        self._private_key = private_key

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm).signature_algo
        hash_algorithm = get_pyca_cryptography_hash(digest_algorithm)
        key = self._private_key
        if mechanism == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), hash_algorithm)
        if mechanism == "ecdsa" and isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(data, ec.ECDSA(hash_algorithm))
        return super().sign_raw(data, digest_algorithm)


class KeyInMemorySigner:
    """A key held in process memory: the local PKI's key or one read from PKCS#12."""

    def __init__(
        self,
        private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
        certificate: x509.Certificate,
        chain: list[x509.Certificate],
        *,
        description: str,
    ) -> None:
        self._certificate = to_asn1_cert(certificate)
        self._chain = [to_asn1_cert(cert) for cert in chain]
        self._description = description
        self._signer = CachedKeySigner(private_key, self._certificate, self._chain)

    @property
    def certificate(self) -> asn1_x509.Certificate:
        return self._certificate

    @property
    def chain(self) -> list[asn1_x509.Certificate]:
        return self._chain

    @property
    def description(self) -> str:
        return self._description

    def pyhanko_signer(self) -> PyhankoSigner:
        return self._signer


def load_pkcs12_signer(path: str | Path, passphrase: str | None) -> KeyInMemorySigner:
    """Read a PKCS#12 file once with ``cryptography``.

    Raises SigningKeyUnavailable when the file is missing, the passphrase is wrong,
    the file uses an encryption ``cryptography`` cannot read, or it holds no key.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SigningKeyUnavailable(f"署名用の PKCS#12 ファイル {path} を読めませんでした（{exc.strerror}）。") from exc
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, passphrase.encode() if passphrase else None)
    except ValueError as exc:
        raise SigningKeyUnavailable(
            "署名用の PKCS#12 ファイルを開けませんでした。パスフレーズが誤っているか、"
            "古い暗号方式（RC2/3DES）で保護されています。openssl で AES 方式に変換してください。"
        ) from exc
    if key is None or cert is None:
        raise SigningKeyUnavailable("PKCS#12 ファイルに秘密鍵と証明書が含まれていません。")
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise SigningKeyUnavailable("PKCS#12 の秘密鍵は RSA または ECDSA である必要があります。")
    return KeyInMemorySigner(key, cert, list(extra), description=f"PKCS#12: {path}")


class Pkcs11Signer:
    """A non-extractable key in an HSM (or SoftHSM2), used through pyhanko.sign.pkcs11.

    The session is opened on first use and kept; a failed login is reported as
    SigningKeyUnavailable and retried on the next call.
    """

    def __init__(
        self,
        *,
        module: str,
        token_label: str,
        key_label: str,
        pin: str,
        certificate: x509.Certificate | None = None,
        chain: list[x509.Certificate] | None = None,
    ) -> None:
        self.module = module
        self.token_label = token_label
        self.key_label = key_label
        self._pin = pin
        self._certificate = to_asn1_cert(certificate) if certificate else None
        self._chain = [to_asn1_cert(cert) for cert in chain or []]
        self._lock = threading.Lock()
        self._signer: PyhankoSigner | None = None
        self._session: object | None = None

    @property
    def certificate(self) -> asn1_x509.Certificate:
        cert = self.pyhanko_signer().signing_cert
        assert cert is not None
        return cert

    @property
    def chain(self) -> list[asn1_x509.Certificate]:
        return self._chain

    @property
    def description(self) -> str:
        return f"PKCS#11: {self.module} トークン「{self.token_label}」鍵「{self.key_label}」"

    def pyhanko_signer(self) -> PyhankoSigner:
        with self._lock:
            if self._signer is None:
                self._signer = self._open()
            return self._signer

    def _open(self) -> PyhankoSigner:
        from pkcs11 import exceptions as p11_errors
        from pyhanko.config.pkcs11 import TokenCriteria
        from pyhanko.sign import pkcs11 as pyhanko_pkcs11

        try:
            session = pyhanko_pkcs11.open_pkcs11_session(
                self.module, token_criteria=TokenCriteria(label=self.token_label), user_pin=self._pin
            )
        except p11_errors.PinIncorrect as exc:
            raise SigningKeyUnavailable(
                "HSM にログインできませんでした（PIN が正しくありません）。管理者に連絡してください。"
            ) from exc
        except (p11_errors.PKCS11Error, OSError, RuntimeError) as exc:
            raise SigningKeyUnavailable(
                f"HSM（PKCS#11 モジュール {self.module}、トークン「{self.token_label}」）を開けませんでした。"
            ) from exc
        self._session = session
        return pyhanko_pkcs11.PKCS11Signer(
            session,
            key_label=self.key_label,
            cert_label=None if self._certificate else self.key_label,
            signing_cert=self._certificate,
            ca_chain=self._chain,
        )

    def close(self) -> None:
        """Close the HSM session, if open."""
        with self._lock:
            if self._session is not None:
                self._session.close()  # type: ignore[attr-defined]
            self._session = None
            self._signer = None
