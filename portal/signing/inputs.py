"""Checks on an uploaded PDF before anything is stored or signed.

Each refusal is its own DomainError subclass with the message shown to the uploader.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO

from pyhanko.pdf_utils.misc import PdfReadError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.validation import read_certification_data

from . import speedups
from .errors import InvalidPdf

speedups.install()

HEADER_WINDOW = 1024
TRAILER_WINDOW = 2048
# What pyhanko's reader raises on broken or hostile structure besides PdfReadError (a negative startxref,
# an xref subsection of 10^8 entries, a /Root that is not a dictionary, nesting deeper than Python's stack).
MALFORMED = (PdfReadError, ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError)


class NotAPdf(InvalidPdf):
    default_message = "PDF ファイルではありません。PDF 形式のファイルを選択してください。"


class TruncatedPdf(InvalidPdf):
    default_message = "PDF ファイルが壊れているか、途中で切れています。元のファイルをもう一度アップロードしてください。"


class EncryptedPdf(InvalidPdf):
    default_message = (
        "パスワードで保護（暗号化）された PDF は署名できません。保護を解除した PDF をアップロードしてください。"
    )


class CertifiedNoChanges(InvalidPdf):
    default_message = (
        "この PDF には変更を禁止する証明署名（DocMDP）が付いているため、署名を追加できません。"
        "証明署名のない PDF をアップロードしてください。"
    )


class PdfTooLarge(InvalidPdf):
    status_code = 413

    def __init__(self, max_bytes: int) -> None:
        mebibyte = 1024 * 1024
        megabytes = max_bytes // mebibyte if max_bytes % mebibyte == 0 else round(max_bytes / 1_000_000)
        super().__init__(f"ファイルが大きすぎます。{megabytes} MB 以下の PDF をアップロードしてください。")
        self.max_bytes = max_bytes


def _size(stream: BinaryIO) -> int:
    position = stream.tell()
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(position)
    return size


def as_stream(pdf: bytes | BinaryIO) -> BinaryIO:
    """A seekable stream over ``pdf`` without copying bytes or memoryviews."""
    if isinstance(pdf, bytes | bytearray | memoryview):
        return io.BytesIO(pdf)
    return pdf


def _read(stream: BinaryIO, *, max_bytes: int) -> PdfFileReader:
    size = _size(stream)
    if size > max_bytes:
        raise PdfTooLarge(max_bytes)
    stream.seek(0)
    if b"%PDF-" not in stream.read(HEADER_WINDOW):
        raise NotAPdf()
    stream.seek(max(0, size - TRAILER_WINDOW))
    if b"%%EOF" not in stream.read():
        raise TruncatedPdf()
    stream.seek(0)
    try:
        # strict=False: hybrid-reference files are common and otherwise unreadable.
        return PdfFileReader(stream, strict=False)
    except MALFORMED as exc:
        raise TruncatedPdf() from exc


def open_for_reading(pdf: bytes | BinaryIO, *, max_bytes: int) -> PdfFileReader:
    """A reader over a PDF that is only to be verified (encrypted or certified is fine).

    Raises PdfTooLarge, NotAPdf or TruncatedPdf.
    """
    return _read(as_stream(pdf), max_bytes=max_bytes)


def open_checked(pdf: bytes | BinaryIO, *, max_bytes: int) -> PdfFileReader:
    """Check an uploaded PDF and return a reader over it.

    Raises PdfTooLarge, NotAPdf, TruncatedPdf, EncryptedPdf or CertifiedNoChanges.
    """
    reader = _read(as_stream(pdf), max_bytes=max_bytes)
    try:
        if reader.encrypted:
            raise EncryptedPdf()
        certification = read_certification_data(reader)
    except MALFORMED as exc:
        raise TruncatedPdf() from exc
    # ISO 32000-1 §12.8.2.2: DocMDP P=1 forbids any change, later signatures included.
    if certification is not None and certification.permission == MDPPerm.NO_CHANGES:
        raise CertifiedNoChanges()
    return reader


def check_pdf(pdf: bytes | BinaryIO, *, max_bytes: int) -> None:
    """Refuse an upload that cannot be signed; call it before storing the file.

    Raises PdfTooLarge, NotAPdf, TruncatedPdf, EncryptedPdf or CertifiedNoChanges.
    """
    open_checked(pdf, max_bytes=max_bytes)
