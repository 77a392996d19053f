"""PAdES signatures checked by independent validators: pdfsig, openssl cms/ts, pyhanko AdES."""

from __future__ import annotations

import hashlib
import io
import subprocess
from pathlib import Path

import pytest

from portal.signing.context import SigningContext
from portal.signing.pades import Approval, finalize, sign_approval, verify
from tests.signing.conftest import pdfsig_results, require_tool, run, signed_parts


@pytest.fixture(scope="module")
def two_approvals_finalized(context: SigningContext) -> tuple[bytes, bytes, bytes]:
    """(after first approval, after second, after finalize) of one contract."""
    import datetime as dt

    from tests.pdfs import make_pdf

    first = sign_approval(
        make_pdf("contract"),
        Approval("山田 太郎", "yamada@city.example.lg.jp", dt.datetime(2026, 4, 1, 0, 0, tzinfo=dt.UTC)),
        context=context,
    )
    second = sign_approval(
        first,
        Approval("髙橋 花子", "hanako@vendor.example.co.jp", dt.datetime(2026, 4, 2, 0, 0, tzinfo=dt.UTC)),
        context=context,
    )
    return first, second, finalize(second, context=context)


def test_approval_is_an_incremental_pades_b_t_signature(
    context: SigningContext, pdf: bytes, approval: Approval
) -> None:
    requests_before = context.tsa.timestamper.request_count  # type: ignore[attr-defined]

    signed = sign_approval(pdf, approval, context=context)

    assert signed.startswith(pdf), "the original revision must stay byte-for-byte intact"
    assert context.tsa.timestamper.request_count == requests_before + 1  # type: ignore[attr-defined]
    report = verify(signed, context=context)
    assert report.is_valid
    (signature,) = report.signatures
    assert (
        signature.reason == "髙橋 花子 様 hanako@vendor.example.co.jp が 2026-04-01 10:02:03 +09:00 JST に承認しました"
    )
    assert signature.location == "日本"
    assert signature.pades_level == "B-T"
    assert signature.is_timestamp_valid
    assert signature.signer_organization == "テスト市"
    assert signature.covers_whole_document


def test_two_approvals_then_finalize_give_three_valid_revisions_at_b_lta(
    context: SigningContext, two_approvals_finalized: tuple[bytes, bytes, bytes]
) -> None:
    first, second, final = two_approvals_finalized

    assert second.startswith(first)
    assert final.startswith(second)
    report = verify(final, context=context)
    assert [s.field_name for s in report.signatures] == ["Signature1", "Signature2", "DocTimeStamp3"]
    assert report.is_valid
    assert all(s.is_valid and s.has_revocation_data for s in report.signatures)
    # pyhanko's AdES validation (ETSI EN 319 102-1) passes only for B-LTA.
    assert [s.pades_level for s in report.signatures] == ["B-LTA", "B-LTA", None]
    assert report.signatures[-1].covers_whole_document
    assert [s.revision for s in report.signatures] == [2, 3, 4]


def test_pdfsig_reports_each_approval_signature_valid(
    tmp_path: Path, two_approvals_finalized: tuple[bytes, bytes, bytes]
) -> None:
    path = tmp_path / "final.pdf"
    path.write_bytes(two_approvals_finalized[2])

    results = pdfsig_results(path)

    # poppler 22.12 cannot check document timestamps; it says so for the third.
    assert results[:2] == ["Signature is Valid.", "Signature is Valid."]
    assert len(results) == 3


def test_openssl_verifies_cms_and_timestamp_tokens_against_the_local_root(
    tmp_path: Path, pki_dir: Path, two_approvals_finalized: tuple[bytes, bytes, bytes]
) -> None:
    openssl = require_tool("openssl")
    root = pki_dir / "root.crt"
    parts = signed_parts(two_approvals_finalized[2])
    assert len(parts) == 3

    for index, part in enumerate(parts):
        content = tmp_path / f"content{index}.bin"
        content.write_bytes(part.signed_bytes)
        signature = tmp_path / f"sig{index}.der"
        signature.write_bytes(part.cms_der)
        if not part.is_document_timestamp:
            result = openssl_cms_verify(openssl, signature, content, root, tmp_path)
            assert result.returncode == 0, result.stderr
            assert "Verification successful" in result.stderr
        (token,) = part.timestamp_tokens()
        token_path = tmp_path / f"token{index}.der"
        token_path.write_bytes(token)
        # A signature timestamp covers the signature value; a document timestamp, the ByteRange.
        imprinted = part.signed_bytes if part.is_document_timestamp else part.signature_value()
        result = run(
            [
                openssl,
                "ts",
                "-verify",
                "-in",
                str(token_path),
                "-token_in",
                "-digest",
                hashlib.sha256(imprinted).hexdigest(),
                "-CAfile",
                str(root),
            ]
        )
        assert result.returncode == 0, result.stderr + result.stdout
        assert "Verification: OK" in result.stdout


def test_one_flipped_byte_in_a_signed_range_is_reported_by_every_validator(
    tmp_path: Path, context: SigningContext, two_approvals_finalized: tuple[bytes, bytes, bytes]
) -> None:
    final = two_approvals_finalized[2]
    position = final.index(b"(contract page 1) Tj")
    tampered = bytearray(final)
    tampered[position + 1] ^= 0x01  # "contract" -> "bontract", inside every ByteRange
    tampered_bytes = bytes(tampered)

    report = verify(tampered_bytes, context=context)
    assert not report.is_valid
    assert all(not s.is_intact for s in report.signatures)

    path = tmp_path / "tampered.pdf"
    path.write_bytes(tampered_bytes)
    results = pdfsig_results(path)
    assert len(results) == 3
    assert all(r != "Signature is Valid." for r in results[:2])

    openssl = require_tool("openssl")
    part = signed_parts(tampered_bytes)[0]
    (tmp_path / "content.bin").write_bytes(part.signed_bytes)
    (tmp_path / "sig.der").write_bytes(part.cms_der)
    result = openssl_cms_verify(openssl, tmp_path / "sig.der", tmp_path / "content.bin",
                                pki_dir_of(context) / "root.crt", tmp_path)
    assert result.returncode != 0


def openssl_cms_verify(
    openssl: str, signature: Path, content: Path, root: Path, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """`openssl cms -verify` of a detached CMS signature over the raw ByteRange bytes."""
    return run([openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", str(signature),
                "-content", str(content), "-CAfile", str(root), "-purpose", "any", "-out", str(tmp_path / "out.bin")])


def pki_dir_of(context: SigningContext) -> Path:
    assert context.pki is not None
    return context.pki.directory


def test_signing_writes_into_a_given_stream(context: SigningContext, pdf: bytes, approval: Approval) -> None:
    output = io.BytesIO()

    result = sign_approval(io.BytesIO(pdf), approval, context=context, output=output)

    assert result is None
    assert verify(output.getvalue(), context=context).is_valid


def test_unsigned_pdf_is_reported_as_such(context: SigningContext, pdf: bytes) -> None:
    report = verify(pdf, context=context)

    assert not report.is_valid
    assert report.problems == ("この PDF には電子署名がありません。",)


def test_crl_fetch_failure_stops_finalize_cleanly(context: SigningContext, pdf: bytes, approval: Approval) -> None:
    from dataclasses import replace

    from portal.signing.errors import RevocationUnavailable
    from portal.signing.revocation import LocalFirstFetcherBackend

    signed = sign_approval(pdf, approval, context=context)
    # No local shortcut: the CRL URL (http://portal.test/…, a reserved name) must be fetched and cannot be.
    offline = replace(
        context, fetcher_backend_factory=lambda: LocalFirstFetcherBackend(lambda url: None, per_request_timeout=2)
    )
    output = io.BytesIO()

    with pytest.raises(RevocationUnavailable) as error:
        finalize(signed, context=offline, output=output)

    assert error.value.message.startswith("証明書の失効情報（CRL）を取得できませんでした。")
    assert output.getvalue() == b""


def test_a_forked_worker_signs_with_its_own_loop(context: SigningContext, pdf: bytes, approval: Approval) -> None:
    """gunicorn --preload forks after the parent may have signed: the child must not hang."""
    import os

    sign_approval(pdf, approval, context=context)  # the parent's signing loop thread now exists
    pid = os.fork()
    if pid == 0:  # pragma: no cover (child)
        try:
            code = 0 if verify(sign_approval(pdf, approval, context=context), context=context).is_valid else 3
        except BaseException:
            code = 4
        os._exit(code)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
