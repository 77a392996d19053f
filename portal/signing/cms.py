"""A PAdES baseline CMS SignedData assembled from pre-encoded DER.

pyhanko builds its CMS objects with asn1crypto, which copies and re-tags every
certificate on every signature (~20 ms per approval measured here).  The structure
PAdES B-T needs is small and fixed (ETSI EN 319 142-1 §6.3: content-type,
message-digest and signing-certificate-v2 signed attributes; no CMS signing-time,
the time goes in the signature dictionary's /M; the signature time-stamp as an
unsigned attribute), so it is assembled here from DER parts encoded once per key.
pyhanko still prepares the PDF, computes the ByteRange digest and embeds the result
(its documented "interrupted signing" API), and validates it.
"""

from __future__ import annotations

import hashlib

from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from pyhanko.sign.general import as_signing_certificate_v2, simple_cms_attribute
from pyhanko.sign.signers import Signer as PyhankoSigner
from pyhanko.sign.timestamps import TimeStamper


def der_length(length: int) -> bytes:
    """DER length octets (X.690 §8.1.3)."""
    if length < 0x80:
        return bytes([length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


def der(tag: int, *parts: bytes) -> bytes:
    """One DER TLV with the given tag octet around the concatenated parts."""
    body = b"".join(parts)
    return bytes([tag]) + der_length(len(body)) + body


def der_integer(value: int) -> bytes:
    return der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def der_oid(dotted: str) -> bytes:
    return core.ObjectIdentifier(dotted).dump()


INTEGER_1 = der_integer(1)
OID_DATA = der_oid("1.2.840.113549.1.7.1")
OID_SIGNED_DATA = der_oid("1.2.840.113549.1.7.2")
OID_CONTENT_TYPE = der_oid("1.2.840.113549.1.9.3")
OID_MESSAGE_DIGEST = der_oid("1.2.840.113549.1.9.4")
OID_SIGNATURE_TIME_STAMP = der_oid("1.2.840.113549.1.9.16.2.14")
SHA256_ALGORITHM = der(0x30, der_oid("2.16.840.1.101.3.4.2.1"), b"\x05\x00")


class TimestampMismatch(ValueError):
    """The TSA answered with a token for a different digest."""


class CmsTemplate:
    """The per-key constant parts of the CMS, encoded once."""

    def __init__(
        self,
        signer: PyhankoSigner,
        certificate: asn1_x509.Certificate,
        chain: list[asn1_x509.Certificate],
    ) -> None:
        self.signer = signer
        self.signing_certificate_attr = simple_cms_attribute(
            "signing_certificate_v2", as_signing_certificate_v2(certificate)
        ).dump()
        self.sid = cms.IssuerAndSerialNumber(
            {"issuer": certificate.issuer, "serial_number": certificate.serial_number}
        ).dump()
        self.signature_algorithm = signer.get_signature_mechanism_for_digest("sha256").dump()
        seen: set[bytes] = set()
        certs = []
        for cert in [certificate, *chain]:
            encoded = cert.dump()
            if encoded not in seen:
                seen.add(encoded)
                certs.append(encoded)
        self.certificates = der(0xA0, *certs)

    def size_without_token(self) -> int:
        """Upper bound of the DER size without the unsigned timestamp attribute."""
        signature_length = 512 + 16  # up to RSA-4096, or a DER ECDSA signature
        fixed = len(self.signing_certificate_attr) + len(self.sid) + len(self.signature_algorithm)
        return fixed + len(self.certificates) + signature_length + 256

    async def build(self, document_digest: bytes, timestamper: TimeStamper | None) -> bytes:
        """Sign ``document_digest`` (SHA-256 over the ByteRange) and return the DER CMS.

        Raises whatever the key or the TSA raises; TimestampMismatch if the token
        does not cover our signature.
        """
        attributes = sorted(
            [
                der(0x30, OID_CONTENT_TYPE, der(0x31, OID_DATA)),
                der(0x30, OID_MESSAGE_DIGEST, der(0x31, der(0x04, document_digest))),
                self.signing_certificate_attr,
            ]
        )  # DER SET OF: sorted by encoding (X.690 §11.6)
        signed_attrs = b"".join(attributes)
        signature = await self.signer.async_sign_raw(der(0x31, signed_attrs), "sha256")
        unsigned = b""
        if timestamper is not None:
            imprint = hashlib.sha256(signature).digest()
            token = await timestamper.async_timestamp(imprint, "sha256")
            tst_info = token["content"]["encap_content_info"]["content"].parsed
            if tst_info["message_imprint"]["hashed_message"].native != imprint:
                raise TimestampMismatch("timestamp token covers another digest")
            unsigned = der(0xA1, der(0x30, OID_SIGNATURE_TIME_STAMP, der(0x31, token.dump())))
        signer_info = der(
            0x30,
            INTEGER_1,
            self.sid,
            SHA256_ALGORITHM,
            der(0xA0, signed_attrs),
            self.signature_algorithm,
            der(0x04, signature),
            unsigned,
        )
        signed_data = der(
            0x30,
            INTEGER_1,
            der(0x31, SHA256_ALGORITHM),
            der(0x30, OID_DATA),
            self.certificates,
            der(0x31, signer_info),
        )
        return der(0x30, OID_SIGNED_DATA, der(0xA0, signed_data))
