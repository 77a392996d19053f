"""Uploads that cannot be signed are refused before anything is stored, each with its message."""

from __future__ import annotations

import io

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils import writer as pdf_writer
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import MDPPerm

from portal.signing.context import SigningContext
from portal.signing.errors import InvalidPdf
from portal.signing.inputs import (
    CertifiedNoChanges,
    EncryptedPdf,
    NotAPdf,
    PdfTooLarge,
    TruncatedPdf,
    check_pdf,
)
from portal.signing.pades import Approval, finalize, sign_approval
from tests.pdfs import make_pdf

LIMIT = 1_000_000


def _encrypted_pdf() -> bytes:
    writer = pdf_writer.PdfFileWriter()
    writer.insert_page(
        pdf_writer.PageObject(
            contents=writer.add_object(generic.StreamObject(stream_data=b"")),
            media_box=generic.ArrayObject([generic.NumberObject(v) for v in (0, 0, 595, 842)]),
        )
    )
    writer.encrypt("owner-secret", "user-secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _certified_no_changes(context: SigningContext) -> bytes:
    metadata = signers.PdfSignatureMetadata(
        field_name="Certification", certify=True, docmdp_permissions=MDPPerm.NO_CHANGES
    )
    pdf_signer = signers.PdfSigner(metadata, signer=context.cms_template().signer)
    return pdf_signer.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(make_pdf()))).getvalue()


def _bad_inputs(context: SigningContext) -> dict[str, tuple[bytes, type[InvalidPdf], str]]:
    pdf = make_pdf()
    return {
        "not-a-pdf": (
            b"PK\x03\x04 a zip file, really" * 10,
            NotAPdf,
            "PDF ファイルではありません。PDF 形式のファイルを選択してください。",
        ),
        "truncated": (
            pdf[: len(pdf) // 2],
            TruncatedPdf,
            "PDF ファイルが壊れているか、途中で切れています。元のファイルをもう一度アップロードしてください。",
        ),
        "encrypted": (
            _encrypted_pdf(),
            EncryptedPdf,
            "パスワードで保護（暗号化）された PDF は署名できません。保護を解除した PDF をアップロードしてください。",
        ),
        "certified-no-changes": (
            _certified_no_changes(context),
            CertifiedNoChanges,
            "この PDF には変更を禁止する証明署名（DocMDP）が付いているため、署名を追加できません。"
            "証明署名のない PDF をアップロードしてください。",
        ),
        "too-large": (
            make_pdf(size=LIMIT + 1),
            PdfTooLarge,
            "ファイルが大きすぎます。1 MB 以下の PDF をアップロードしてください。",
        ),
    }


CASES = ["not-a-pdf", "truncated", "encrypted", "certified-no-changes", "too-large"]


@pytest.mark.parametrize("case", CASES)
def test_bad_upload_is_refused_with_its_message(context: SigningContext, case: str) -> None:
    data, error_type, message = _bad_inputs(context)[case]

    with pytest.raises(error_type) as error:
        check_pdf(data, max_bytes=LIMIT)

    assert error.value.message == message


@pytest.mark.parametrize("case", CASES)
def test_signing_refuses_bad_input_and_writes_nothing(context: SigningContext, approval: Approval, case: str) -> None:
    from dataclasses import replace

    data, error_type, _ = _bad_inputs(context)[case]
    limited = replace(context, max_bytes=LIMIT)
    output = io.BytesIO()

    with pytest.raises(error_type):
        sign_approval(data, approval, context=limited, output=output)
    with pytest.raises(error_type):
        finalize(data, context=limited, output=output)

    assert output.getvalue() == b""


def test_a_good_pdf_passes(pdf: bytes) -> None:
    check_pdf(pdf, max_bytes=LIMIT)
