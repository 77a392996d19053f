"""PAdES signatures by the service key: B-T per approval, B-LTA at completion.

Every change is an incremental update: earlier revisions, and the signatures over
them, stay byte-for-byte intact.  On any failure nothing is returned and an output
stream given by the caller is truncated back to where it started.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, BinaryIO, overload

import aiohttp
from asn1crypto import core as asn1_core
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields, signers
from pyhanko.sign.signers.pdf_signer import PdfTBSDocument
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.validation import DocumentSecurityStore, collect_validation_info
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    InsufficientRevinfoError,
    PathBuildingError,
    PathValidationError,
    RevokedError,
)
from pyhanko_certvalidator.fetchers.api import Fetchers

from . import aio
from .cms import TimestampMismatch
from .content import ActiveContent, InflatesTooMuch, UnsignableStructure, check_page_tree, deepest_nesting, scan
from .context import SigningContext
from .errors import (
    CertificateExpired,
    InvalidPdf,
    RevocationUnavailable,
    SigningError,
    SigningKeyUnavailable,
    TimestampUnavailable,
)
from .inputs import as_stream, open_checked, open_for_reading
from .signer import Signer
from .tsa import HttpTsa, LocalTsa
from .verification import SignatureReport, VerificationReport, long_term_validation
from .verification import verify as _verify

JST = dt.timezone(dt.timedelta(hours=9), "JST")
LOCATION = "日本"


@dataclass(frozen=True)
class Approval:
    """One person's approval, written into the signature's /Reason."""

    name: str
    email: str
    approved_at: dt.datetime

    def __post_init__(self) -> None:
        if self.approved_at.tzinfo is None:
            raise ValueError("approved_at must be timezone-aware")

    def reason(self) -> str:
        """「{氏名} 様 {メールアドレス} が {YYYY-MM-DD HH:MM:SS +09:00} JST に承認しました」"""
        when = self.approved_at.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S")
        return f"{self.name} 様 {self.email} が {when} +09:00 JST に承認しました"


STAMP_WIDTH, STAMP_HEIGHT, STAMP_EDGE, STAMP_GAP = 170.0, 40.0, 12.0, 6.0  # points: 60 × 14 mm, 4 mm from the edge
STAMP_CORNERS = ("bottom-right", "bottom-left", "top-right", "top-left")  # as portal.config.STAMP_CORNERS


@dataclass(frozen=True)
class Stamp:
    """A visible signature: `text` in a small box at a corner of a page, in the margin, beside the stamps
    already there (`slot` 0 is at the corner, 1 next to it, ...). It is an annotation: the page content
    the signature covers is not changed."""

    text: str
    font_file: str
    corner: str = "bottom-right"
    page: int = -1  # 0-based; negative counts from the last page
    slot: int = 0

    def __post_init__(self) -> None:
        if self.corner not in STAMP_CORNERS:
            raise ValueError(f"corner must be one of {', '.join(STAMP_CORNERS)}")

    def box(self, media_box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
        left, bottom, right, top = media_box
        step = (STAMP_WIDTH + STAMP_GAP) * self.slot
        if self.corner.endswith("right"):
            x1 = max(left, right - STAMP_EDGE - STAMP_WIDTH - step)
        else:
            x1 = min(right - STAMP_WIDTH, left + STAMP_EDGE + step)
        y1 = bottom + STAMP_EDGE if self.corner.startswith("bottom") else top - STAMP_EDGE - STAMP_HEIGHT
        return round(x1), round(y1), round(x1 + STAMP_WIDTH), round(y1 + STAMP_HEIGHT)


def _media_box(reader: PdfFileReader, page: int) -> tuple[float, float, float, float]:
    node = reader.find_page_for_modification(page)[0].get_object()
    while "/MediaBox" not in node and "/Parent" in node:
        node = node["/Parent"]
    left, bottom, right, top = (float(value) for value in node.get("/MediaBox", (0, 0, 595, 842)))
    return left, bottom, right, top


STAMP_BASE_CHARS = frozenset("0123456789:：/年月日時分秒 ")


@lru_cache(maxsize=32)
def _font_subset(path: str, chars: frozenset[str]) -> bytes:
    """The glyphs of `chars` from the font file, as a small TrueType font.

    Parsing the whole font takes seconds for a large CJK font (IPAmj明朝: 46 MB); one signature over several
    documents stamps the same text, so the subset is made once and kept."""
    from fontTools import subset, ttLib

    options = subset.Options()
    options.glyph_names = False
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.recalc_timestamp = False
    font = ttLib.TTFont(path, lazy=True, recalcTimestamp=False)
    try:
        subsetter = subset.Subsetter(options)
        subsetter.populate(text="".join(sorted(chars | STAMP_BASE_CHARS)))
        subsetter.subset(font)
        out = io.BytesIO()
        font.save(out)
        return out.getvalue()
    finally:
        font.close()


def _stamp_font(path: str, text: str) -> Any:
    """pyhanko's OpenType (HarfBuzz) font engine over the subset of the font for `text` (pyhanko's own factory
    reads the whole file and leaves it open), in PDF text space units: pyhanko writes glyph widths in the
    font's units, which spreads the glyphs apart for a font not of 1000 units per em (IPAmj明朝 has 2048)."""
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulator, GlyphAccumulatorFactory

    class Accumulator(GlyphAccumulator):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._to_text_space = 1000 / self.units_per_em
            self.units_per_em = 1000
            self.hb_font.scale = (1000, 1000)

        def _get_cid_and_width(self, glyph_id: int) -> tuple[int, int]:
            if glyph_id not in self._glyphs:
                cid, width = super()._get_cid_and_width(glyph_id)
                self._glyphs[glyph_id] = (cid, round(width * self._to_text_space))
            return self._glyphs[glyph_id]

    class Factory(GlyphAccumulatorFactory):
        def create_font_engine(self, writer: Any, obj_stream: Any = None) -> GlyphAccumulator:
            if obj_stream is None and writer.stream_xrefs and self.create_objstream_if_needed:
                obj_stream = writer.prepare_object_stream()
            return Accumulator(writer=writer, font_handle=io.BytesIO(_font_subset(self.font_file, frozenset(text))),
                               font_size=self.font_size, bcp47_lang_code="ja", obj_stream=obj_stream)

    return Factory(path)


def _stamp_spec(reader: PdfFileReader, field_name: str, stamp: Stamp) -> tuple[fields.SigFieldSpec, TextStampStyle]:
    count = int(reader.root["/Pages"]["/Count"])
    page = stamp.page % count if count else 0
    spec = fields.SigFieldSpec(sig_field_name=field_name, on_page=page, box=stamp.box(_media_box(reader, page)))
    style = TextStampStyle(
        stamp_text=stamp.text.replace("%", "%%"),
        text_box_style=TextBoxStyle(font=_stamp_font(stamp.font_file, stamp.text), font_size=7, leading=9),
        border_width=1,
    )
    return spec, style


def _is_timestamp_failure(exc: BaseException) -> bool:
    while exc is not None:
        if isinstance(
            exc,
            TimestampRequestError | TimestampMismatch | aiohttp.ClientError | asyncio.TimeoutError | ConnectionError,
        ):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def _run_producing(make: Callable[[BinaryIO], Coroutine[Any, Any, None]], output: BinaryIO | None) -> bytes | None:
    """Run a writing coroutine; on failure leave ``output`` as it was and re-raise."""
    if output is not None and not (output.readable() and output.seekable()):
        # pyhanko would silently buffer the whole file in a BytesIO to re-read it.
        raise ValueError("output must be readable and seekable (open it with 'w+b')")
    target = output if output is not None else io.BytesIO()
    start = target.tell()
    try:
        aio.run(make(target))
    except BaseException:
        target.seek(start)
        target.truncate()
        raise
    if output is None:
        return target.getvalue()  # type: ignore[attr-defined]
    return None


def _field_name(reader: PdfFileReader, prefix: str) -> str:
    existing = {name for name, _, _ in fields.enumerate_sig_fields(reader)}
    number = len(existing) + 1
    while f"{prefix}{number}" in existing:
        number += 1
    return f"{prefix}{number}"


def _check_certificate(signer: Signer, now: dt.datetime) -> None:
    validity = signer.certificate["tbs_certificate"]["validity"]
    if not validity["not_before"].native <= now <= validity["not_after"].native:
        raise CertificateExpired()


@overload
def sign_approval(pdf: bytes | BinaryIO, approval: Approval, *, context: SigningContext | None = None,
                  stamp: Stamp | None = None) -> bytes: ...
@overload
def sign_approval(
    pdf: bytes | BinaryIO, approval: Approval, *, context: SigningContext | None = None, output: BinaryIO,
    stamp: Stamp | None = None,
) -> None: ...
def sign_approval(
    pdf: bytes | BinaryIO,
    approval: Approval,
    *,
    context: SigningContext | None = None,
    output: BinaryIO | None = None,
    stamp: Stamp | None = None,
) -> bytes | None:
    """Add one PAdES B-T signature by the service key, incrementally: invisible, or shown as `stamp`.

    Returns the signed PDF, or writes it to ``output`` (then returns None); ``output``
    must be readable and seekable (``open(path, "w+b")``) so large files are hashed
    from disk rather than buffered in memory.
    Raises an InvalidPdf subclass for input that cannot be signed,
    TimestampUnavailable, SigningKeyUnavailable or CertificateExpired; on any error
    nothing is returned and ``output`` is left as it was.
    """
    return _sign(pdf, approval.reason(), context=context, output=output, stamp=stamp)


def sign_issued(pdf: bytes, *, reason: str, context: SigningContext | None = None, stamp: Stamp | None = None) -> bytes:
    """Sign a document the service itself issues (the 合意締結証明書): PAdES B-T by the service key,
    the /Reason saying what was issued. Raises as sign_approval()."""
    signed = _sign(pdf, reason, context=context, output=None, stamp=stamp)
    assert signed is not None
    return signed


def _sign(pdf: bytes | BinaryIO, reason: str, *, context: SigningContext | None,
          output: BinaryIO | None, stamp: Stamp | None) -> bytes | None:
    ctx = context or _default_context()
    stream = as_stream(pdf)
    reader = open_checked(stream, max_bytes=ctx.max_bytes)
    _check_certificate(ctx.signer, dt.datetime.now(dt.UTC))
    field_name = _field_name(reader, "Signature")
    metadata = signers.PdfSignatureMetadata(
        field_name=field_name,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason,
        location=LOCATION,
    )
    spec, style = _stamp_spec(reader, field_name, stamp) if stamp else (None, None)

    template = ctx.cms_template()

    async def make(out: BinaryIO) -> None:
        writer = IncrementalPdfFileWriter(stream, strict=False)
        pdf_signer = signers.PdfSigner(metadata, signer=template.signer, stamp_style=style, new_field_spec=spec)
        prepared, _, written = await pdf_signer.async_digest_doc_for_signing(
            writer, bytes_reserved=ctx.reserved_sizes()[0], output=out
        )
        signature_cms = await template.build(prepared.document_digest, ctx.tsa.timestamper)
        await PdfTBSDocument.async_finish_signing(written, prepared, signature_cms)

    try:
        return _run_producing(make, output)
    except SigningError:
        raise
    except Exception as exc:
        raise _translate(exc) from exc


@dataclass(frozen=True)
class UploadRules:
    """What an upload may be: PDF_MAX_BYTES, PDF_ALLOW_EMBEDDED_PDFS, PDF_MAX_INFLATED_BYTES."""

    max_bytes: int
    allow_embedded_pdfs: bool = False
    max_inflated_bytes: int = 512 * 1024 * 1024


def check_upload(pdf: bytes | BinaryIO, rules: UploadRules) -> None:
    """Refuse, before anything is stored, a PDF that must not or cannot be signed later.

    The file is opened as sign_approval() opens it, every object is scanned for active content
    (portal.signing.content), and the incremental update of an approval signature is written to
    memory (a dry run: no key, no timestamp), so a file that signing would fail on fails here.
    Raises PdfTooLarge, NotAPdf, TruncatedPdf, EncryptedPdf, CertifiedNoChanges, ActiveContent,
    InflatesTooMuch or UnsignableStructure, each with the message for the uploader.
    """
    stream = as_stream(pdf)
    reader = open_checked(stream, max_bytes=rules.max_bytes)
    try:
        check_page_tree(reader)
        scan(reader, allow_embedded_pdfs=rules.allow_embedded_pdfs, max_inflated_bytes=rules.max_inflated_bytes)
        aio.run(_dry_run_signature(stream, reader))
    except (ActiveContent, InflatesTooMuch, UnsignableStructure):
        raise
    except InvalidPdf:
        raise
    except Exception as exc:
        if _caused_by(exc, RecursionError):  # pyhanko's parser recurses once per level of nesting
            stream.seek(0)
            raise UnsignableStructure(f"{deepest_nesting(stream.read())}の入れ子が深すぎる") from None
        raise UnsignableStructure(f"内部の構造が壊れている（{type(exc).__name__}）") from exc


def _caused_by(exc: BaseException | None, kind: type[BaseException]) -> bool:
    while exc is not None:
        if isinstance(exc, kind):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


async def _dry_run_signature(stream: BinaryIO, reader: PdfFileReader) -> None:
    """sign_approval()'s incremental write with a placeholder signature, into memory."""
    from pyhanko.sign.signers.pdf_cms import ExternalSigner

    metadata = signers.PdfSignatureMetadata(
        field_name=_field_name(reader, "Signature"), md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES, reason="dry run", location=LOCATION,
    )
    placeholder = ExternalSigner(signing_cert=None, cert_registry=None, signature_value=bytes(256))
    writer = IncrementalPdfFileWriter(stream, strict=False)
    await signers.PdfSigner(metadata, signer=placeholder).async_digest_doc_for_signing(
        writer, bytes_reserved=16 * 1024, output=io.BytesIO())


def _translate(exc: Exception) -> SigningError:
    """Map a failure inside pyhanko, the TSA client or the key to what people are told."""
    from pkcs11.exceptions import PKCS11Error as Pkcs11LibraryError
    from pyhanko.sign.pkcs11 import PKCS11Error

    if _is_timestamp_failure(exc):
        return TimestampUnavailable()
    if isinstance(exc, InsufficientRevinfoError | RevokedError):
        return RevocationUnavailable()
    if isinstance(exc, Pkcs11LibraryError | PKCS11Error):
        return SigningKeyUnavailable()
    return SigningError(f"電子署名を付与できませんでした（{type(exc).__name__}）。")


def _validation_context(ctx: SigningContext, fetchers: Fetchers, *, require_revinfo: bool) -> ValidationContext:
    return ValidationContext(
        trust_roots=ctx.trust_roots,
        allow_fetching=True,
        revocation_mode="require" if require_revinfo else "soft-fail",
        fetchers=fetchers,
    )


@overload
def finalize(pdf: bytes | BinaryIO, *, context: SigningContext | None = None) -> bytes: ...
@overload
def finalize(pdf: bytes | BinaryIO, *, context: SigningContext | None = None, output: BinaryIO) -> None: ...
def finalize(
    pdf: bytes | BinaryIO,
    *,
    context: SigningContext | None = None,
    output: BinaryIO | None = None,
) -> bytes | None:
    """Make the signed PDF long-term verifiable: PAdES B-LTA.

    One incremental update adds a DSS holding the certificates and CRLs for every
    signature and timestamp in the file (and for the built-in TSA), then a
    document timestamp covers it all.
    Raises RevocationUnavailable when a CRL cannot be fetched, TimestampUnavailable,
    or SigningError when a certificate does not chain to the configured roots.
    """
    ctx = context or _default_context()
    stream = as_stream(pdf)
    open_checked(stream, max_bytes=ctx.max_bytes)

    return _dss_and_doc_timestamp(
        ctx, stream, output, lambda prev: list(prev.embedded_signatures),
        untrusted="署名の証明書を信頼済みのルート証明書まで検証できませんでした。")


async def _tsa_paths(tsa: object, vc: ValidationContext) -> list:
    """The validation path of the configured TSA's certificate, when it is known before its first token."""
    if isinstance(tsa, LocalTsa):
        cert, intermediates = tsa.tsa_cert, []
    elif isinstance(tsa, HttpTsa) and tsa.chain:
        cert, intermediates = tsa.chain[0], tsa.chain[1:]
    else:
        return []
    validator = CertificateValidator(cert, intermediate_certs=intermediates, validation_context=vc)
    return [await validator.async_validate_usage(set(), {"time_stamping"})]


@dataclass(frozen=True)
class NewestTimestamp:
    """The newest document timestamp of a file: what archive-timestamp renewal decides on."""

    field_name: str
    time: dt.datetime
    tsa_certificate: Any  # asn1crypto certificate
    digest_algorithm: str

    @property
    def tsa_not_after(self) -> dt.datetime:
        return self.tsa_certificate["tbs_certificate"]["validity"]["not_after"].native

    @property
    def tsa_serial(self) -> int:
        return self.tsa_certificate.serial_number


def newest_document_timestamp(pdf: bytes | BinaryIO, *, max_bytes: int = 100 * 1024 * 1024) -> NewestTimestamp | None:
    """The newest document timestamp in ``pdf`` (None if it has none); nothing is validated.

    Raises an InvalidPdf subclass when the file cannot be read.
    """
    from pyhanko.sign.general import extract_certificate_info

    reader = open_for_reading(as_stream(pdf), max_bytes=max_bytes)
    timestamps = [e for e in reader.embedded_signatures if e.sig_object_type == "/DocTimeStamp"]
    if not timestamps:
        return None
    newest = max(timestamps, key=lambda e: e.signed_revision)
    tst_info = newest.signed_data["encap_content_info"]["content"].parsed
    return NewestTimestamp(
        field_name=newest.field_name,
        time=tst_info["gen_time"].native,
        tsa_certificate=extract_certificate_info(newest.signed_data).signer_cert,
        digest_algorithm=tst_info["message_imprint"]["hash_algorithm"]["algorithm"].native,
    )


def latest_timestamp_time(pdf: bytes | BinaryIO, *, max_bytes: int = 100 * 1024 * 1024) -> dt.datetime | None:
    """The genTime (aware UTC) of the newest RFC 3161 token in ``pdf``: its document timestamps and the
    signature timestamps of its signatures; None when it has none. Nothing is validated (the batch
    verification does that); this is the time shown as 「タイムスタンプ時刻」 in the search export.

    Raises an InvalidPdf subclass when the file cannot be read.
    """
    reader = open_for_reading(as_stream(pdf), max_bytes=max_bytes)
    times: list[dt.datetime] = []
    for embedded in reader.embedded_signatures:
        if embedded.sig_object_type == "/DocTimeStamp":
            tokens = [embedded.signed_data]
        else:
            unsigned = embedded.signer_info["unsigned_attrs"]
            # Void when absent; .native of the attributes would decode every embedded certificate (seconds)
            present = [] if isinstance(unsigned, asn1_core.Void) else unsigned
            tokens = [value["content"] for attribute in present
                      if attribute["type"].dotted == "1.2.840.113549.1.9.16.2.14" for value in attribute["values"]]
        for signed_data in tokens:
            tst_info = signed_data["encap_content_info"]["content"].parsed
            times.append(tst_info["gen_time"].native.astimezone(dt.UTC))
    return max(times, default=None)


@overload
def add_archive_timestamp(pdf: bytes | BinaryIO, *, context: SigningContext | None = None) -> bytes: ...
@overload
def add_archive_timestamp(
    pdf: bytes | BinaryIO, *, context: SigningContext | None = None, output: BinaryIO
) -> None: ...
def add_archive_timestamp(
    pdf: bytes | BinaryIO,
    *,
    context: SigningContext | None = None,
    output: BinaryIO | None = None,
) -> bytes | None:
    """Renew a B-LTA file's archive timestamp (ETSI EN 319 142-1 §5.5), incrementally.

    One incremental update adds to the DSS the certificates and fresh CRLs of the newest
    document timestamp's TSA (the evidence that is about to lose its own protection) and
    of the TSA in use, then a new document timestamp covers it all: the chain so far stays
    verifiable after the old TSA certificate has expired.
    Raises SigningError when the file has no document timestamp, RevocationUnavailable,
    TimestampUnavailable; on any error nothing is returned and ``output`` is unchanged.
    """
    ctx = context or _default_context()
    stream = as_stream(pdf)
    reader = open_checked(stream, max_bytes=ctx.max_bytes)
    if not any(e.sig_object_type == "/DocTimeStamp" for e in reader.embedded_signatures):
        raise SigningError("文書タイムスタンプがないため、アーカイブタイムスタンプを更新できません。")

    def newest_timestamp(prev: Any) -> list:
        timestamps = [e for e in prev.embedded_signatures if e.sig_object_type == "/DocTimeStamp"]
        return [max(timestamps, key=lambda e: e.signed_revision)]

    return _dss_and_doc_timestamp(
        ctx, stream, output, newest_timestamp,
        untrusted="タイムスタンプ局の証明書を信頼済みのルート証明書まで検証できませんでした。")


def _dss_and_doc_timestamp(ctx: SigningContext, stream: BinaryIO, output: BinaryIO | None,
                           evidence: Callable[[Any], list], *, untrusted: str) -> bytes | None:
    """One incremental update: a DSS with the validation data of `evidence(reader)` and of the TSA in use,
    then a document timestamp over it all (B-LTA at completion, an archive timestamp at renewal)."""
    async def make(out: BinaryIO) -> None:
        writer = IncrementalPdfFileWriter(stream, strict=False)
        tsa = ctx.tsa.timestamper
        async with ctx.fetcher_backend_factory() as fetchers:
            vc = _validation_context(ctx, fetchers, require_revinfo=True)
            paths = []
            for embedded in evidence(writer.prev):
                paths.extend(await collect_validation_info(embedded, vc))
            paths.extend(await _tsa_paths(tsa, vc))
            DocumentSecurityStore.supply_dss_in_writer(writer, sig_contents=None, paths=paths, validation_context=vc)
        await signers.PdfTimeStamper(tsa, field_name=_field_name(writer.prev, "DocTimeStamp")).async_timestamp_pdf(
            writer, "sha256", bytes_reserved=ctx.reserved_sizes()[1], output=out
        )

    try:
        return _run_producing(make, output)
    except SigningError:
        raise
    except (PathBuildingError, PathValidationError) as exc:
        if isinstance(exc, InsufficientRevinfoError | RevokedError):
            raise RevocationUnavailable() from exc
        raise SigningError(untrusted) from exc
    except Exception as exc:
        raise _translate(exc) from exc


def _default_context() -> SigningContext:
    from .service import get_context

    return get_context()


def verify(pdf: bytes | BinaryIO, *, context: SigningContext | None = None) -> VerificationReport:
    """Validate every signature and document timestamp in ``pdf``.

    Raises NotAPdf, TruncatedPdf or PdfTooLarge when the file cannot be read;
    problems with signatures are reported, not raised.
    """
    return _verify(pdf, context=context or _default_context())


__all__ = [
    "Approval",
    "NewestTimestamp",
    "SignatureReport",
    "SigningContext",
    "Stamp",
    "UploadRules",
    "VerificationReport",
    "add_archive_timestamp",
    "check_upload",
    "finalize",
    "latest_timestamp_time",
    "long_term_validation",
    "newest_document_timestamp",
    "sign_approval",
    "sign_issued",
    "verify",
]
