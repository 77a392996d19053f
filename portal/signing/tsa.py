"""RFC 3161 timestamps: the built-in authority (in-process and over HTTP) and external ones.

pyhanko asks a ``TimeStamper`` for tokens.  ``LocalTsa`` answers in-process (no HTTP
round trip to ourselves); ``HttpTsa`` posts to an external RFC 3161 URL (an accredited
認定タイムスタンプ service) through one shared aiohttp session.
``respond_to_http_request`` is the protocol core of the portal's own ``/tsa`` endpoint.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from typing import Protocol

from asn1crypto import cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pyhanko.sign.general import as_signing_certificate_v2, simple_cms_attribute
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko_certvalidator.fetchers.aiohttp_fetchers.util import LazySession

from .cms import (
    INTEGER_1,
    OID_CONTENT_TYPE,
    OID_MESSAGE_DIGEST,
    OID_SIGNED_DATA,
    SHA256_ALGORITHM,
    der,
    der_integer,
    der_oid,
)

ACCEPTED_DIGESTS = {"sha256", "sha384", "sha512"}
_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}


class TimestampClient(Protocol):
    """What the signing code needs from a timestamp authority."""

    @property
    def description(self) -> str:
        """A human label: URL of the TSA, or 「内蔵タイムスタンプ局」."""

    @property
    def timestamper(self) -> TimeStamper:
        """The pyhanko TimeStamper to hand to PdfSigner/PdfTimeStamper."""


def to_asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    """Convert a ``cryptography`` certificate into asn1crypto's form used by pyhanko."""
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


class LocalTsa(TimeStamper):
    """The built-in TSA: signs timestamp tokens in-process with the TSA key.

    The key is parsed once; each token costs one RSA signature.
    """

    def __init__(
        self,
        tsa_cert: x509.Certificate,
        tsa_key: rsa.RSAPrivateKey,
        *,
        policy_oid: str,
        chain: list[x509.Certificate] | None = None,
    ) -> None:
        super().__init__(include_nonce=True)
        self.tsa_cert = to_asn1_cert(tsa_cert)
        self.not_valid_after = tsa_cert.not_valid_after_utc
        self._key = tsa_key
        self.policy_oid = policy_oid
        self._chain = [to_asn1_cert(cert) for cert in chain or []]
        signing_certificate = as_signing_certificate_v2(self.tsa_cert)
        self._signing_certificate_attr = simple_cms_attribute("signing_certificate_v2", signing_certificate).dump()
        self._policy_der = core.ObjectIdentifier(policy_oid).dump()
        self._tsa_name_der = der(0xA0, asn1_x509.GeneralName(name="directory_name", value=self.tsa_cert.subject).dump())
        self._sid_der = cms.IssuerAndSerialNumber(
            {"issuer": self.tsa_cert.issuer, "serial_number": self.tsa_cert.serial_number}
        ).dump()
        self._certificates_der = der(0xA0, b"".join(cert.dump() for cert in [self.tsa_cert, *self._chain]))
        self.request_count = 0

    @property
    def description(self) -> str:
        return "内蔵タイムスタンプ局"

    @property
    def timestamper(self) -> TimeStamper:
        return self

    def respond(self, req: tsp.TimeStampReq, *, now: dt.datetime | None = None) -> bytes:
        """Answer one request with a DER TimeStampResp granting a token.

        Raises Rejected (carrying the DER rejection) for a request we refuse.
        """
        self.request_count += 1
        imprint = req["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        if algorithm not in ACCEPTED_DIGESTS:
            raise Rejected("bad_alg", "unsupported hash algorithm")
        if len(imprint["hashed_message"].native) != _HASHES[algorithm].digest_size:
            raise Rejected("bad_data_format", "digest length does not match algorithm")
        requested_policy = req["req_policy"].native
        if requested_policy is not None and requested_policy != self.policy_oid:
            raise Rejected("unaccepted_policy", "policy not supported")
        gen_time = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        nonce = req["nonce"]
        tst_info_der = der(
            0x30,
            INTEGER_1,
            self._policy_der,
            imprint.dump(),
            der_integer(secrets.randbits(127)),
            der(0x18, gen_time.strftime("%Y%m%d%H%M%SZ").encode()),
            _ACCURACY_1S,
            nonce.dump() if nonce.native is not None else b"",
            self._tsa_name_der,
        )
        token = self._sign(tst_info_der, gen_time, include_certs=bool(req["cert_req"].native))
        return der(0x30, _GRANTED, token)

    def token_size_estimate(self) -> int:
        """Upper bound of a token's DER size, for the space reserved in the PDF."""
        digest = bytes(32)
        req = tsp.TimeStampReq(
            {
                "version": 1,
                "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": digest},
                "nonce": 2**64 - 1,
                "cert_req": True,
            }
        )
        counted = self.request_count
        response = self.respond(req)
        self.request_count = counted  # a size probe, not a timestamp anyone asked for
        return len(response) + 64

    def _sign(self, tst_info_der: bytes, gen_time: dt.datetime, *, include_certs: bool) -> bytes:
        """A DER SignedData token, assembled from pre-encoded parts.

        Building it with asn1crypto objects costs ~15 ms (copying and re-tagging the
        certificates on every call); concatenating DER costs well under 1 ms.
        """
        attributes = sorted(
            [
                der(0x30, OID_CONTENT_TYPE, der(0x31, _OID_TST_INFO)),
                der(0x30, _OID_SIGNING_TIME, der(0x31, der(0x17, gen_time.strftime("%y%m%d%H%M%SZ").encode()))),
                self._signing_certificate_attr,
                der(0x30, OID_MESSAGE_DIGEST, der(0x31, der(0x04, hashlib.sha256(tst_info_der).digest()))),
            ]
        )  # DER: SET OF sorted by encoding (X.690 §11.6)
        signed_attrs_body = b"".join(attributes)
        signature = self._key.sign(der(0x31, signed_attrs_body), padding.PKCS1v15(), hashes.SHA256())
        signer_info = der(
            0x30,
            INTEGER_1,
            self._sid_der,
            SHA256_ALGORITHM,
            der(0xA0, signed_attrs_body),
            _RSA_PKCS1_ALGORITHM,
            der(0x04, signature),
        )
        signed_data = der(
            0x30,
            _INTEGER_3,
            der(0x31, SHA256_ALGORITHM),
            der(0x30, _OID_TST_INFO, der(0xA0, der(0x04, tst_info_der))),
            self._certificates_der if include_certs else b"",
            der(0x31, signer_info),
        )
        return der(0x30, OID_SIGNED_DATA, der(0xA0, signed_data))

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        try:
            return tsp.TimeStampResp.load(self.respond(req))
        except Rejected as exc:
            raise TimestampRequestError(f"built-in TSA refused the request: {exc}") from exc


_INTEGER_3 = der_integer(3)
_GRANTED = der(0x30, der_integer(0))
_ACCURACY_1S = der(0x30, der_integer(1))
_OID_TST_INFO = der_oid("1.2.840.113549.1.9.16.1.4")
_OID_SIGNING_TIME = der_oid("1.2.840.113549.1.9.5")
_RSA_PKCS1_ALGORITHM = der(0x30, der_oid("1.2.840.113549.1.1.1"), b"\x05\x00")


class Rejected(Exception):
    """The request was refused; ``response`` is the DER TimeStampResp saying why."""

    def __init__(self, fail_info: str, text: str) -> None:
        super().__init__(text)
        status = tsp.PKIStatusInfo(
            {"status": "rejection", "status_string": [text], "fail_info": tsp.PKIFailureInfo({fail_info})}
        )
        # RFC 3161 §2.4.2 omits timeStampToken on rejection (asn1crypto cannot build that).
        self.response = der(0x30, status.dump())


def respond_to_http_request(tsa: LocalTsa, body: bytes) -> bytes:
    """RFC 3161 §3.4 over HTTP: DER TimeStampReq in, DER TimeStampResp out.

    Never raises on bad input: an unparseable request gets a ``badDataFormat`` rejection.
    """
    try:
        req = tsp.TimeStampReq.load(body)
        req.native  # noqa: B018  (forces full parsing so malformed input fails here)
    except (ValueError, TypeError, OverflowError):
        return Rejected("bad_data_format", "malformed TimeStampReq").response
    try:
        return tsa.respond(req)
    except Rejected as exc:
        return exc.response


class HttpTsa(HTTPTimeStamper):
    """An external RFC 3161 authority over HTTP(S), with optional basic auth.

    One session is created on the signing loop and reused for every request; it goes
    through the proxy of HTTPS_PROXY / HTTP_PROXY when set.  ``chain`` is the TSA's
    certificate followed by its issuers (TSA_CERT_CHAIN_PATH): finalize() embeds their
    revocation data, and every token must be signed by that certificate.  With
    ``policy_oid`` every request asks for that policy and every answer must carry it.
    """

    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10,
        policy_oid: str | None = None,
        chain: list[x509.Certificate] | None = None,
    ) -> None:
        from .revocation import OutboundSession

        headers = {}
        if username:
            # aiohttp.BasicAuth is deprecated; the header is the same thing (RFC 7617).
            credentials = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {credentials}"
        super().__init__(url, timeout=timeout, headers=headers, session=OutboundSession())
        self.request_count = 0
        self.policy_oid = policy_oid or None
        self.chain = [to_asn1_cert(cert) for cert in chain or []]
        self.last_certificate: asn1_x509.Certificate | None = None

    @property
    def certificate(self) -> asn1_x509.Certificate | None:
        """The TSA's certificate: the configured one, else the one of the last token received."""
        return self.chain[0] if self.chain else self.last_certificate

    def request_cms(self, message_digest: bytes, md_algorithm: str) -> tuple[int | None, tsp.TimeStampReq]:
        nonce, req = super().request_cms(message_digest, md_algorithm)
        if self.policy_oid:
            req["req_policy"] = self.policy_oid
        return nonce, req

    @property
    def description(self) -> str:
        return self.url

    @property
    def timestamper(self) -> TimeStamper:
        return self

    def close(self) -> None:
        """Close the pooled HTTP session (it lives on the signing loop)."""
        from . import aio

        session = self._session
        if isinstance(session, LazySession):
            aio.run(session.close())

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        self.request_count += 1
        return await super().async_request_tsa_response(req)

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> cms.ContentInfo:
        """A token for ``message_digest``.

        Raises TimestampRequestError for an unreachable TSA, a refusal, or an answer
        that is not a well-formed RFC 3161 response.
        """
        try:
            token = await super().async_timestamp(message_digest, md_algorithm)
            tst_info = token["content"]["encap_content_info"]["content"].parsed
            tst_info.native  # noqa: B018  (parse all)
            signer = _token_signer(token)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise TimestampRequestError(f"malformed answer from {self.url}") from exc
        if self.policy_oid and tst_info["policy"].dotted != self.policy_oid:
            raise TimestampRequestError(f"{self.url} answered under policy {tst_info['policy'].dotted}")
        if self.chain and signer is not None and signer.dump() != self.chain[0].dump():
            raise TimestampRequestError(f"{self.url} signed with a certificate other than TSA_CERT_CHAIN_PATH's")
        self.last_certificate = signer
        return token


def _token_signer(token: cms.ContentInfo) -> asn1_x509.Certificate | None:
    """The certificate a timestamp token names as its signer, when the token carries it."""
    signed_data = token["content"]
    sid = signed_data["signer_infos"][0]["sid"]
    for choice in signed_data["certificates"] or []:
        cert = choice.chosen
        if not isinstance(cert, asn1_x509.Certificate):
            continue
        if sid.name == "issuer_and_serial_number":
            if cert.issuer == sid.chosen["issuer"] and cert.serial_number == sid.chosen["serial_number"].native:
                return cert
        elif cert.key_identifier == sid.chosen.native:
            return cert
    return None
