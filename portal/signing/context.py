"""The configured parts every signing operation needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pyhanko_certvalidator.fetchers import FetcherBackend

from .cms import CmsTemplate
from .pki import LocalPki
from .signer import Signer
from .tsa import LocalTsa, TimestampClient


@dataclass
class SigningContext:
    """Everything a signing operation needs; built once per process by service.py."""

    signer: Signer
    tsa: TimestampClient
    trust_roots: list  # asn1crypto certificates
    fetcher_backend_factory: Callable[[], FetcherBackend]
    max_bytes: int = 100 * 1024 * 1024
    # Hex characters reserved for /Contents.  A known size spares pyhanko a dry-run
    # signature (and a second TSA request) to measure the CMS object; a tight one
    # keeps every later parse of /Contents (pyhanko reads hex a byte at a time) short.
    # None: estimated by reserved_sizes().
    signature_bytes_reserved: int | None = None
    timestamp_bytes_reserved: int | None = None
    pki: LocalPki | None = None
    _template: CmsTemplate | None = field(default=None, repr=False)

    def cms_template(self) -> CmsTemplate:
        """The signer's pre-encoded CMS parts, built on first use.

        Raises SigningKeyUnavailable when the key cannot be opened.
        """
        if self._template is None:
            self._template = CmsTemplate(self.signer.pyhanko_signer(), self.signer.certificate, self.signer.chain)
        return self._template

    def reserved_sizes(self) -> tuple[int, int]:
        """Hex characters to reserve for (approval signature, document timestamp).

        The built-in TSA's token length is known up to a few bytes (serial and nonce
        vary), so it is measured once; an external TSA gets a generous allowance.
        """
        if self.signature_bytes_reserved is None or self.timestamp_bytes_reserved is None:
            token_der = _EXTERNAL_TOKEN_ALLOWANCE
            if isinstance(self.tsa, LocalTsa):
                token_der = self.tsa.token_size_estimate()
            fixed = self.cms_template().size_without_token()
            self.signature_bytes_reserved = 2 * (fixed + token_der) + _SLACK
            self.timestamp_bytes_reserved = 2 * token_der + _SLACK
        return self.signature_bytes_reserved, self.timestamp_bytes_reserved


_EXTERNAL_TOKEN_ALLOWANCE = 8192  # DER bytes: a token with a 3–4 certificate chain
_SLACK = 512
