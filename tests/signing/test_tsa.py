"""Timestamp authorities: the built-in one over HTTP, external ones that fail."""

from __future__ import annotations

import base64
import http.server
import io
import socket
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import core, tsp

from portal.signing.context import SigningContext
from portal.signing.errors import TimestampUnavailable
from portal.signing.pades import Approval, finalize, sign_approval, verify
from portal.signing.service import builtin_tsa
from portal.signing.tsa import HttpTsa, respond_to_http_request
from tests.signing.conftest import require_tool, run

ServerStarter = Callable[[Callable[[http.server.BaseHTTPRequestHandler, bytes], None]], str]
MESSAGE = "タイムスタンプ局に接続できませんでした。しばらくしてから再度お試しください。"


@pytest.fixture
def external(context: SigningContext) -> Iterator[Callable[..., tuple[SigningContext, HttpTsa]]]:
    """Build a context using an HttpTsa; every session is closed afterwards."""
    made: list[HttpTsa] = []

    def build(url: str, **kwargs: Any) -> tuple[SigningContext, HttpTsa]:
        tsa = HttpTsa(url, **kwargs)
        made.append(tsa)
        return replace(context, tsa=tsa, _template=context.cms_template()), tsa

    yield build
    for tsa in made:
        tsa.close()


def _reply(handler: http.server.BaseHTTPRequestHandler, body: bytes, content_type: str) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def test_http_responder_answers_an_openssl_query_that_openssl_verifies(tmp_path: Path, context: SigningContext) -> None:
    openssl = require_tool("openssl")
    assert context.pki is not None
    data = tmp_path / "data.txt"
    data.write_bytes("契約書".encode())
    query = tmp_path / "query.tsq"
    result = run([openssl, "ts", "-query", "-data", str(data), "-sha256", "-cert", "-out", str(query)])
    assert result.returncode == 0, result.stderr

    reply = respond_to_http_request(builtin_tsa(context.pki), query.read_bytes())

    (tmp_path / "reply.tsr").write_bytes(reply)
    result = run(
        [
            openssl,
            "ts",
            "-verify",
            "-queryfile",
            str(query),
            "-in",
            str(tmp_path / "reply.tsr"),
            "-CAfile",
            str(context.pki.directory / "root.crt"),
        ]
    )
    assert "Verification: OK" in result.stdout, result.stderr
    token = tsp.TimeStampResp.load(reply)["time_stamp_token"]["content"]["encap_content_info"]["content"]
    assert token.parsed["policy"].dotted.startswith("2.25.")


def test_http_responder_rejects_garbage_with_bad_data_format(context: SigningContext) -> None:
    assert context.pki is not None

    reply = respond_to_http_request(builtin_tsa(context.pki), b"not a request")

    status = tsp.PKIStatusInfo.load(core.Sequence.load(reply)[0].dump())
    assert status["status"].native == "rejection"
    assert status["fail_info"].native == {"bad_data_format"}


def test_external_tsa_over_http_with_basic_auth_one_request_per_signature(
    context: SigningContext,
    pdf: bytes,
    approval: Approval,
    loopback_server: ServerStarter,
    external: Callable[..., tuple[SigningContext, HttpTsa]],
) -> None:
    assert context.pki is not None
    authority = builtin_tsa(context.pki)
    seen_auth: list[str | None] = []

    def answer(handler: http.server.BaseHTTPRequestHandler, body: bytes) -> None:
        seen_auth.append(handler.headers.get("Authorization"))
        _reply(handler, respond_to_http_request(authority, body), "application/timestamp-reply")

    with_tsa, tsa = external(loopback_server(answer), username="portal", password="s3cret")

    signed = sign_approval(pdf, approval, context=with_tsa)
    final = finalize(signed, context=with_tsa)

    assert verify(final, context=context).is_valid
    assert tsa.request_count == 2  # one signature timestamp, one document timestamp
    assert seen_auth == ["Basic " + base64.b64encode(b"portal:s3cret").decode()] * 2


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_tsa_down_fails_cleanly_and_leaves_no_output(
    pdf: bytes, approval: Approval, external: Callable[..., tuple[SigningContext, HttpTsa]]
) -> None:
    down, _ = external(f"http://127.0.0.1:{_closed_port()}/tsa", timeout=2)
    output = io.BytesIO()

    with pytest.raises(TimestampUnavailable) as error:
        sign_approval(pdf, approval, context=down, output=output)

    assert error.value.message == MESSAGE
    assert output.getvalue() == b""


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\x30\x03garbage", "application/timestamp-reply"),
        (b"<html>maintenance</html>", "text/html"),
    ],
    ids=["garbage-reply", "html-page"],
)
def test_tsa_answering_garbage_fails_cleanly(
    context: SigningContext,
    pdf: bytes,
    approval: Approval,
    loopback_server: ServerStarter,
    body: bytes,
    content_type: str,
    external: Callable[..., tuple[SigningContext, HttpTsa]],
) -> None:
    url = loopback_server(lambda handler, _: _reply(handler, body, content_type))
    broken, _ = external(url, timeout=2)
    signed_once = sign_approval(pdf, approval, context=context)
    output = io.BytesIO(b"kept")
    output.seek(4)

    with pytest.raises(TimestampUnavailable):
        sign_approval(pdf, approval, context=broken, output=output)
    with pytest.raises(TimestampUnavailable):
        finalize(signed_once, context=broken, output=output)

    assert output.getvalue() == b"kept"
