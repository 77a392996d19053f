"""Shared fixtures for the signing tests: one local PKI per session, a PDF (tests/pdfs.py),
independent validators (pdfsig, openssl) and a loopback HTTP server helper."""

from __future__ import annotations

import datetime as dt
import http.server
import io
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms
from pyhanko.pdf_utils.reader import PdfFileReader

from portal.signing import service
from portal.signing.context import SigningContext
from portal.signing.pades import Approval
from tests.conftest import require, require_tool, shared_pki_dir  # noqa: F401  (re-exported for signing tests)
from tests.pdfs import make_pdf

BASE_URL = "http://portal.test"


@pytest.fixture(scope="session")
def pki_dir() -> Path:
    """The shared built-in PKI of another identity: these tests check names and a CRL URL nobody serves."""
    return Path(shared_pki_dir(PUBLIC_BASE_URL=BASE_URL, AGENCY_NAME="テスト市", SERVICE_NAME="テスト市電子契約"))


@pytest.fixture(scope="session")
def signing_settings(pki_dir: Path) -> dict[str, Any]:
    return {
        "PKI_DIR": str(pki_dir),
        "PUBLIC_BASE_URL": BASE_URL,
        "AGENCY_NAME": "テスト市",
        "SERVICE_NAME": "テスト市電子契約",
        "PDF_MAX_BYTES": 5 * 1024 * 1024,
    }


@pytest.fixture(scope="session")
def context(signing_settings: dict[str, Any]) -> SigningContext:
    """The built-in configuration: local PKI key, in-process TSA."""
    return service.build_context(signing_settings)


@pytest.fixture
def approval() -> Approval:
    return Approval(
        name="髙橋 花子",
        email="hanako@vendor.example.co.jp",
        approved_at=dt.datetime(2026, 4, 1, 1, 2, 3, tzinfo=dt.UTC),
    )


@pytest.fixture
def pdf() -> bytes:
    return make_pdf()


@dataclass(frozen=True)
class SignedPart:
    """One signature's raw pieces, extracted by ByteRange the way an outside tool would."""

    field_name: str
    is_document_timestamp: bool
    signed_bytes: bytes
    cms_der: bytes

    def timestamp_tokens(self) -> list[bytes]:
        """DER timestamp tokens: the document timestamp itself, or the signature's TST."""
        if self.is_document_timestamp:
            return [self.cms_der]
        content = cms.ContentInfo.load(self.cms_der)
        signer_info = content["content"]["signer_infos"][0]
        return [
            value.dump()
            for attr in signer_info["unsigned_attrs"]
            if attr["type"].native == "signature_time_stamp_token"
            for value in attr["values"]
        ]

    def signature_value(self) -> bytes:
        content = cms.ContentInfo.load(self.cms_der)
        return content["content"]["signer_infos"][0]["signature"].native


def signed_parts(data: bytes) -> list[SignedPart]:
    reader = PdfFileReader(io.BytesIO(data), strict=False)
    parts = []
    for sig in reader.embedded_signatures:
        start1, len1, start2, len2 = (int(v) for v in sig.sig_object["/ByteRange"])
        signed = data[start1 : start1 + len1] + data[start2 : start2 + len2]
        hex_contents = data[start1 + len1 + 1 : start2 - 1]
        der = bytes.fromhex(hex_contents.decode())
        # /Contents is zero-padded; cut at the DER length of the outer SEQUENCE.
        der = der[: _der_total_length(der)]
        parts.append(SignedPart(sig.field_name, sig.sig_object_type == "/DocTimeStamp", signed, der))
    return parts


def _der_total_length(der: bytes) -> int:
    first = der[1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    return 2 + count + int.from_bytes(der[2 : 2 + count], "big")


def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False, **kwargs)


def pdfsig_results(path: Path) -> list[str]:
    """pdfsig's 'Signature Validation' line per signature (its trust line is unreliable on bookworm)."""
    out = run([require_tool("pdfsig"), str(path)]).stdout
    return [line.split(":", 1)[1].strip() for line in out.splitlines() if "Signature Validation:" in line]


@pytest.fixture
def loopback_server() -> Iterator[Callable[[Callable[[http.server.BaseHTTPRequestHandler, bytes], None]], str]]:
    """Start a real HTTP server on 127.0.0.1 whose POST handler the test supplies; returns its URL."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(handle_post: Callable[[http.server.BaseHTTPRequestHandler, bytes], None]) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                handle_post(self, body)

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/tsa"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
