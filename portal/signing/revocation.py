"""Revocation data fetching that short-circuits the portal's own CRL URL.

Certificates of the built-in PKI point at ``{PUBLIC_BASE_URL}/pki/crl/root.crl``.
Inside the portal process that CRL is read (and refreshed) directly, so finalize()
and verify() need no HTTP server, not even our own; any other URL goes over HTTP,
through the proxy named by HTTPS_PROXY / HTTP_PROXY (and NO_PROXY) when set: closed
networks reach the outside only through one.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

import aiohttp
import certifi
from asn1crypto import crl as asn1_crl
from pyhanko_certvalidator.fetchers import Fetchers
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend
from pyhanko_certvalidator.fetchers.aiohttp_fetchers.crl_client import AIOHttpCRLFetcher
from pyhanko_certvalidator.fetchers.aiohttp_fetchers.util import LazySession
from pyhanko_certvalidator.fetchers.common_utils import FetchKind


class OutboundSession(LazySession):
    """pyhanko's lazily created aiohttp session, honouring the proxy environment variables.

    aiohttp's ``trust_env`` picks HTTPS_PROXY for https URLs and HTTP_PROXY for http
    URLs (CONNECT tunnel or absolute-form request) and skips hosts in NO_PROXY.
    """

    def get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            context = ssl.create_default_context(cafile=certifi.where())
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context), trust_env=True)
        return self._session

LocalCrlSource = Callable[[str], bytes | None]
"""Maps a URL to DER CRL bytes when it is ours, else None."""


class LocalFirstCrlFetcher(AIOHttpCRLFetcher):
    """CRL fetcher that asks ``local_source`` before going to the network."""

    def __init__(self, session: object, local_source: LocalCrlSource, **kwargs: object) -> None:
        super().__init__(session, **kwargs)  # type: ignore[arg-type]
        self._local_source = local_source

    async def _single_fetch(self, url: str):
        local = self._local_source(url)
        if local is None:
            return await super()._single_fetch(url)

        async def task() -> asn1_crl.CertificateList:
            self._charge(FetchKind.CRL)
            return asn1_crl.CertificateList.load(local)

        return await self._post_fetch_task(url, task)


class LocalFirstFetcherBackend(AIOHttpFetcherBackend):
    """AIOHttpFetcherBackend whose CRL fetcher knows the portal's own CRLs."""

    def __init__(self, local_source: LocalCrlSource, *, per_request_timeout: float = 10) -> None:
        super().__init__(per_request_timeout=per_request_timeout)
        self.session = OutboundSession()
        self._local_source = local_source

    def get_fetchers(self) -> Fetchers:
        fetchers = super().get_fetchers()
        crl_fetcher = LocalFirstCrlFetcher(
            self.session,
            self._local_source,
            per_request_timeout=self.per_request_timeout,
            budget=fetchers.crl_fetcher._budget,  # type: ignore[attr-defined]
        )
        return Fetchers(
            ocsp_fetcher=fetchers.ocsp_fetcher,
            crl_fetcher=crl_fetcher,
            cert_fetcher=fetchers.cert_fetcher,
        )


__all__ = ["LocalCrlSource", "LocalFirstCrlFetcher", "LocalFirstFetcherBackend", "OutboundSession"]
