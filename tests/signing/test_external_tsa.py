"""The external TSA as production uses it: its chain and policy, the accredited-certificate check on
the admin page, and TSA and CRL requests through the proxy of HTTPS_PROXY / HTTP_PROXY."""

from __future__ import annotations

import datetime as dt
import http.server
import select
import socket
import socketserver
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pyhanko_certvalidator import CertificateValidator, ValidationContext

from portal.signing import aio, pades, service
from portal.signing import pki as local_pki
from portal.signing.context import SigningContext
from portal.signing.errors import TimestampUnavailable
from portal.signing.revocation import LocalFirstFetcherBackend
from portal.signing.tsa import HttpTsa, LocalTsa, respond_to_http_request, to_asn1_cert
from tests.pdfs import make_pdf

POLICY = "1.2.392.200001.9999.1"


@dataclass
class CountingProxy:
    """A tiny HTTP proxy on loopback: absolute-form requests are forwarded, CONNECT is tunnelled."""

    url: str = ""
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def proxy() -> Iterator[CountingProxy]:
    state = CountingProxy()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _forward(self) -> None:
            state.requests.append(f"{self.command} {self.path}")
            target = urllib.parse.urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            with socket.create_connection((target.hostname, target.port or 80), timeout=10) as upstream:
                head = [f"{self.command} {target.path or '/'} HTTP/1.0", f"Host: {target.netloc}",
                        f"Content-Length: {len(body)}"]
                head += [f"{k}: {v}" for k, v in self.headers.items()
                         if k.lower() not in ("host", "content-length", "proxy-connection", "connection")]
                upstream.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
                while chunk := upstream.recv(65536):
                    self.wfile.write(chunk)
            self.close_connection = True

        do_GET = do_POST = _forward  # noqa: N815

        def do_CONNECT(self) -> None:
            state.requests.append(f"CONNECT {self.path}")
            host, port = self.path.rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)), timeout=10)
            self.send_response(200, "Connection established")
            self.end_headers()
            sockets = [self.connection, upstream]
            while True:
                readable, _, _ = select.select(sockets, [], [], 5)
                if not readable:
                    break
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        upstream.close()
                        return
                    (upstream if sock is self.connection else self.connection).sendall(data)
            upstream.close()

        def log_message(self, *args: Any) -> None:
            pass

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


@dataclass
class ExternalTsa:
    """Another CA with a TSA certificate, its CRL and an RFC 3161 endpoint, all over HTTP on loopback."""

    url: str
    chain_path: Path
    root_path: Path
    tsa: LocalTsa
    pki: local_pki.LocalPki


@pytest.fixture
def external_tsa(tmp_path: Path) -> Iterator[ExternalTsa]:
    holder: dict[str, Any] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            reply = respond_to_http_request(holder["tsa"], body)
            self._send(reply, "application/timestamp-reply")

        def do_GET(self) -> None:
            self._send(local_pki.current_crl(holder["pki"]), "application/pkix-crl")

        def _send(self, data: bytes, mimetype: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", mimetype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    pki = local_pki.ensure_local_pki(tmp_path / "accredited-ca", agency_name="認定TSA事業者", service_name="認定TSA",
                                     base_url=base)
    tsa = LocalTsa(pki.tsa_cert, pki.tsa_key, policy_oid=POLICY, chain=[pki.root_cert])
    holder.update(tsa=tsa, pki=pki)
    pem = serialization.Encoding.PEM
    chain_path = tmp_path / "tsa-chain.pem"
    chain_path.write_bytes(pki.tsa_cert.public_bytes(pem) + pki.root_cert.public_bytes(pem))
    root_path = tmp_path / "tsa-root.pem"
    root_path.write_bytes(pki.root_cert.public_bytes(pem))
    yield ExternalTsa(f"{base}/tsp", chain_path, root_path, tsa, pki)
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _no_proxy_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def _settings(signing_settings: dict[str, Any], external: ExternalTsa, **extra: Any) -> dict[str, Any]:
    return {**signing_settings, "TSA_URL": external.url, "TSA_CERT_CHAIN_PATH": str(external.chain_path),
            "TSA_POLICY_OID": POLICY, "SIGNING_TRUST_ROOTS": [str(external.root_path)], **extra}


def _close(context: SigningContext) -> None:
    if isinstance(context.tsa, HttpTsa):
        context.tsa.close()


def test_finalize_through_the_proxy_asks_the_tsa_and_its_crl_via_it(
    signing_settings: dict[str, Any], external_tsa: ExternalTsa, proxy: CountingProxy, approval: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    context = service.build_context(_settings(signing_settings, external_tsa))
    try:
        signed = pades.sign_approval(make_pdf(), approval, context=context)
        final = pades.finalize(signed, context=context)
    finally:
        _close(context)

    assert pades.verify(final, context=context).is_valid
    tsa_requests = [r for r in proxy.requests if r.startswith("POST ") and r.endswith("/tsp")]
    crl_requests = [r for r in proxy.requests if r.startswith("GET ") and r.endswith("/pki/crl/root.crl")]
    assert len(tsa_requests) == 2  # one per signature and one for the document timestamp
    assert len(crl_requests) >= 1  # the external TSA's CRL: the portal's own CRL never leaves the process
    assert all(external_tsa.url.split("/tsp")[0] in r for r in proxy.requests)


def test_https_tsa_requests_go_through_a_connect_tunnel(
    signing_settings: dict[str, Any], proxy: CountingProxy, approval: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    context = service.build_context({**signing_settings, "TSA_URL": f"https://127.0.0.1:{port}/tsp", "TSA_TIMEOUT": 3})
    try:
        with pytest.raises(TimestampUnavailable):  # nothing speaks TLS there; the tunnel is what counts
            pades.sign_approval(make_pdf(), approval, context=context)
    finally:
        _close(context)
        listener.close()

    assert proxy.requests == [f"CONNECT 127.0.0.1:{port}"]


def test_without_proxy_settings_nothing_goes_through_the_proxy(
    signing_settings: dict[str, Any], external_tsa: ExternalTsa, proxy: CountingProxy, approval: Any
) -> None:
    context = service.build_context(_settings(signing_settings, external_tsa))
    try:
        pades.sign_approval(make_pdf(), approval, context=context)
    finally:
        _close(context)

    assert proxy.requests == []


def test_a_token_under_another_policy_is_refused(
    signing_settings: dict[str, Any], external_tsa: ExternalTsa, approval: Any
) -> None:
    context = service.build_context(_settings(signing_settings, external_tsa, TSA_POLICY_OID="1.2.3.4"))
    try:
        with pytest.raises(TimestampUnavailable):
            pades.sign_approval(make_pdf(), approval, context=context)
    finally:
        _close(context)


def test_a_token_signed_by_a_certificate_other_than_the_configured_chain_is_refused(
    signing_settings: dict[str, Any], external_tsa: ExternalTsa, approval: Any, tmp_path: Path
) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = local_pki.issue_certificate(external_tsa.pki, stranger.public_key(), common_name="別の TSA",
                                        organization="別", years=1, is_tsa=True)
    chain = tmp_path / "other-chain.pem"
    chain.write_bytes(other.public_bytes(serialization.Encoding.PEM))
    context = service.build_context(_settings(signing_settings, external_tsa, TSA_CERT_CHAIN_PATH=str(chain)))
    try:
        with pytest.raises(TimestampUnavailable):
            pades.sign_approval(make_pdf(), approval, context=context)
    finally:
        _close(context)


def _warnings(settings: dict[str, Any]) -> tuple[str, ...]:
    context = service.build_context(settings)
    try:
        return service.signing_status(settings, context, now=dt.datetime.now(dt.UTC)).warnings
    finally:
        _close(context)


def test_the_accredited_check_compares_the_tsa_certificate_not_only_the_url(
    signing_settings: dict[str, Any], external_tsa: ExternalTsa, tmp_path: Path
) -> None:
    settings = _settings(signing_settings, external_tsa, TSA_ACCREDITED_URLS=[external_tsa.url])
    unrelated = tmp_path / "unrelated.pem"
    unrelated.write_bytes(service.ensure_pki(signing_settings).root_cert.public_bytes(serialization.Encoding.PEM))

    by_issuer = _warnings({**settings, "TSA_ACCREDITED_CERTS": [str(external_tsa.root_path)]})
    by_certificate = _warnings({**settings, "TSA_ACCREDITED_CERTS": [str(external_tsa.chain_path)]})
    not_listed = _warnings({**settings, "TSA_ACCREDITED_CERTS": [str(unrelated)]})
    no_list = _warnings(settings)
    url_only = _warnings({**settings, "TSA_ACCREDITED_URLS": ["https://other.example.jp/tsp"],
                          "TSA_ACCREDITED_CERTS": [str(external_tsa.root_path)]})

    assert not [w for w in by_issuer if "認定" in w]
    assert not [w for w in by_certificate if "認定" in w]
    assert any("認定タイムスタンプ局の証明書一覧（TSA_ACCREDITED_CERTS）に含まれていません" in w for w in not_listed)
    assert any("TSA_ACCREDITED_CERTS）が設定されていない" in w for w in no_list)
    assert any("TSA_ACCREDITED_URLS）に含まれていません" in w for w in url_only)


def test_crl_of_another_ca_is_fetched_through_the_proxy(
    external_tsa: ExternalTsa, proxy: CountingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)

    async def validate() -> None:
        backend = LocalFirstFetcherBackend(lambda url: None)
        try:
            vc = ValidationContext(trust_roots=[to_asn1_cert(external_tsa.pki.root_cert)], allow_fetching=True,
                                   revocation_mode="require", fetchers=backend.get_fetchers())
            validator = CertificateValidator(to_asn1_cert(external_tsa.pki.tsa_cert), validation_context=vc)
            await validator.async_validate_usage(set(), {"time_stamping"})
        finally:
            await backend.close()

    aio.run(validate())

    assert [r for r in proxy.requests if r.endswith("/pki/crl/root.crl")]
