"""verify(): a report per signature and document timestamp, as Acrobat's panel shows it.

Integrity and trust come from pyhanko's PDF validation; the PAdES level from its
AdES validation (ETSI EN 319 102-1), which reports PASSED for B-LTA only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import BinaryIO

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESStatus
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import (
    DocumentSecurityStore,
    DocumentTimestampStatus,
    EmbeddedPdfSignature,
    PdfSignatureStatus,
    SignatureCoverageLevel,
    async_validate_pdf_signature,
    async_validate_pdf_timestamp,
)
from pyhanko.sign.validation.ades import ades_lta_validation
from pyhanko.sign.validation.errors import NoDSSFoundError
from pyhanko.sign.validation.policy_decl import (
    PdfSignatureValidationSpec,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.fetchers import FetcherBackend
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)
from pyhanko_certvalidator.registry import SimpleTrustManager

from . import aio
from .context import SigningContext
from .inputs import MALFORMED, TruncatedPdf, as_stream, open_for_reading

ALLOWED_LATER_CHANGES = (
    ModificationLevel.NONE,
    ModificationLevel.LTA_UPDATES,
    ModificationLevel.FORM_FILLING,
)


@dataclass(frozen=True)
class SignatureReport:
    """What one signature (or document timestamp) proves."""

    field_name: str
    is_document_timestamp: bool
    signer_name: str
    signer_organization: str | None
    certificate_not_after: dt.datetime | None
    reason: str | None
    location: str | None
    signing_time: dt.datetime | None
    timestamp_authority: str | None
    timestamp_time: dt.datetime | None
    is_timestamp_valid: bool | None
    is_intact: bool
    is_signature_valid: bool
    covers_whole_document: bool
    revision: int
    total_revisions: int
    has_disallowed_changes: bool
    is_trusted: bool
    has_revocation_data: bool
    pades_level: str | None
    problems: tuple[str, ...] = ()

    @property
    def is_valid(self) -> bool:
        return (
            self.is_intact
            and self.is_signature_valid
            and self.is_trusted
            and not self.has_disallowed_changes
            and self.is_timestamp_valid is not False
        )

    @property
    def is_ltv(self) -> bool:
        return self.pades_level in ("B-LT", "B-LTA") or (self.is_document_timestamp and self.has_revocation_data)

    @property
    def coverage(self) -> str:
        if self.covers_whole_document:
            return "文書全体"
        return f"リビジョン {self.revision}（全 {self.total_revisions} リビジョン中）まで"


@dataclass(frozen=True)
class VerificationReport:
    """The verdict on a whole file."""

    signatures: tuple[SignatureReport, ...]
    problems: tuple[str, ...] = field(default=())

    @property
    def is_valid(self) -> bool:
        return bool(self.signatures) and not self.problems and all(s.is_valid for s in self.signatures)

    @property
    def level(self) -> str | None:
        """The lowest PAdES level over the approval signatures."""
        order = ["B-B", "B-T", "B-LT", "B-LTA"]
        levels = [s.pades_level for s in self.signatures if not s.is_document_timestamp]
        if not levels or None in levels:
            return None
        return min(levels, key=lambda level: order.index(level))  # type: ignore[arg-type]


def _attribute(name: asn1_x509.Name, key: str) -> str | None:
    value = name.native.get(key)
    if isinstance(value, list):
        return value[-1]
    return value


def _ades_spec(ctx: SigningContext, backend: FetcherBackend) -> PdfSignatureValidationSpec:
    rule = RevocationCheckingRule.CRL_OR_OCSP_REQUIRED
    return PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=CertValidationPolicySpec(
                trust_manager=SimpleTrustManager.build(trust_roots=ctx.trust_roots),
                revinfo_policy=CertRevTrustPolicy(
                    RevocationCheckingPolicy(ee_certificate_rule=rule, intermediate_ca_cert_rule=rule)
                ),
            ),
            revinfo_gathering_policy=RevocationInfoGatheringSpec(fetcher_backend=backend),
        )
    )


def _dss_revocation_certs(reader: PdfFileReader) -> tuple[set[bytes], bool]:
    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except NoDSSFoundError:
        return set(), False
    has_revinfo = bool(dss.crls or dss.ocsps)
    return {cert.dump() for cert in dss.load_certs()}, has_revinfo


def verify(pdf: bytes | BinaryIO, *, context: SigningContext) -> VerificationReport:
    """Validate every signature and document timestamp in ``pdf``.

    Raises an InvalidPdf subclass (NotAPdf, TruncatedPdf, PdfTooLarge) when the
    file cannot be read as a PDF; any problem with a signature is reported, not raised.
    """
    ctx = context
    reader = open_for_reading(as_stream(pdf), max_bytes=ctx.max_bytes)
    try:
        return aio.run(_verify(reader, ctx))
    except MALFORMED as exc:  # objects are read lazily: a broken one shows up only here
        raise TruncatedPdf() from exc


async def _verify(reader: PdfFileReader, ctx: SigningContext) -> VerificationReport:
    embedded = list(reader.embedded_signatures)
    if not embedded:
        return VerificationReport((), ("この PDF には電子署名がありません。",))
    dss_certs, dss_has_revinfo = _dss_revocation_certs(reader)
    total = reader.xrefs.total_revisions
    last_doc_ts_revision = max(
        (e.signed_revision for e in embedded if e.sig_object_type == "/DocTimeStamp"), default=-1
    )
    reports = []
    ades_backend = ctx.fetcher_backend_factory()  # its lifetime is ours: closed below
    try:
        async with ctx.fetcher_backend_factory() as fetchers:
            vc_kwargs = {"trust_roots": ctx.trust_roots, "allow_fetching": True, "fetchers": fetchers}
            ades_spec = _ades_spec(ctx, ades_backend)
            for sig in embedded:
                has_revinfo = dss_has_revinfo and _chain_in_dss(sig, dss_certs)
                is_archived = last_doc_ts_revision > sig.signed_revision
                reports.append(
                    await _report(
                        sig, ades_spec, vc_kwargs, total=total, has_revinfo=has_revinfo, is_archived=is_archived
                    )
                )
    finally:
        await ades_backend.close()
    return VerificationReport(tuple(reports))


@dataclass(frozen=True)
class LongTermResult:
    """The AdES long-term (B-LTA) verdict on each approval signature at one validation time."""

    validation_time: dt.datetime
    indications: tuple[tuple[str, str], ...]  # (field name, AdES sub-indication)

    @property
    def is_valid(self) -> bool:
        return bool(self.indications) and all(indication == "PASSED" for _, indication in self.indications)


def long_term_validation(pdf: bytes | BinaryIO, *, context: SigningContext, at: dt.datetime) -> LongTermResult:
    """Validate every approval signature as a validator would at time ``at`` (ETSI EN 319 102-1 §5.6.3).

    ``at`` may lie in the future: it answers "will this file still verify then?", e.g.
    after the TSA certificate of its newest document timestamp has expired.
    Raises an InvalidPdf subclass when the file cannot be read.
    """
    reader = open_for_reading(as_stream(pdf), max_bytes=context.max_bytes)
    return aio.run(_long_term(reader, context, at))


async def _long_term(reader: PdfFileReader, ctx: SigningContext, at: dt.datetime) -> LongTermResult:
    from pyhanko_certvalidator.ltv.types import ValidationTimingInfo

    timing = ValidationTimingInfo(validation_time=at, best_signature_time=at, point_in_time_validation=False)
    backend = ctx.fetcher_backend_factory()
    results = []
    try:
        spec = _ades_spec(ctx, backend)
        for sig in reader.embedded_signatures:
            if sig.sig_object_type == "/DocTimeStamp":
                continue
            result = await ades_lta_validation(sig, spec, timing_info=timing)
            status = result.ades_subindic.status
            results.append((sig.field_name, "PASSED" if status == AdESStatus.PASSED else str(result.ades_subindic)))
    finally:
        await backend.close()
    return LongTermResult(at, tuple(results))


def _chain_in_dss(sig: EmbeddedPdfSignature, dss_certs: set[bytes]) -> bool:
    return sig.signer_cert.dump() in dss_certs


async def _report(
    sig: EmbeddedPdfSignature,
    ades_spec: PdfSignatureValidationSpec,
    vc_kwargs: dict,
    *,
    total: int,
    has_revinfo: bool,
    is_archived: bool,
) -> SignatureReport:
    is_doc_ts = sig.sig_object_type == "/DocTimeStamp"
    problems: list[str] = []
    status: PdfSignatureStatus | DocumentTimestampStatus
    ts_time: dt.datetime | None
    ts_valid: bool | None
    tsa_cert: asn1_x509.Certificate | None
    if is_doc_ts:
        timestamp_status = await async_validate_pdf_timestamp(sig, validation_context=ValidationContext(**vc_kwargs))
        status = timestamp_status
        ts_time, tsa_cert = timestamp_status.timestamp, timestamp_status.signing_cert
        ts_valid = timestamp_status.valid and timestamp_status.intact
    else:
        signature_status = await async_validate_pdf_signature(
            sig,
            signer_validation_context=ValidationContext(**vc_kwargs),
            ts_validation_context=ValidationContext(**vc_kwargs),
        )
        status = signature_status
        ts = signature_status.timestamp_validity
        ts_time = ts.timestamp if ts else None
        ts_valid = (ts.valid and ts.intact and ts.trusted) if ts else None
        tsa_cert = ts.signing_cert if ts else None
    if getattr(status, "revoked", False):
        problems.append("署名者の証明書は失効しています（CRL に記載されています）。")
    modification = status.modification_level
    has_disallowed_changes = modification is not None and modification not in ALLOWED_LATER_CHANGES
    level = None
    if not is_doc_ts and status.intact and status.valid:
        level = "B-T" if ts_valid else "B-B"
        if ts_valid and has_revinfo:
            level = "B-LT"
        if level == "B-LT" and is_archived:
            result = await ades_lta_validation(sig, ades_spec)
            if result.ades_subindic.status == AdESStatus.PASSED:
                level = "B-LTA"
            else:
                problems.append(f"長期検証（PAdES B-LTA）の検証結果: {result.ades_subindic}")
    signer = status.signing_cert
    return SignatureReport(
        field_name=sig.field_name,
        is_document_timestamp=is_doc_ts,
        signer_name=_attribute(signer.subject, "common_name") or signer.subject.human_friendly,
        signer_organization=_attribute(signer.subject, "organization_name"),
        certificate_not_after=signer["tbs_certificate"]["validity"]["not_after"].native,
        reason=_text(sig.sig_object.get("/Reason")),
        location=_text(sig.sig_object.get("/Location")),
        signing_time=ts_time if is_doc_ts else (sig.self_reported_timestamp or ts_time),
        timestamp_authority=(_attribute(tsa_cert.subject, "common_name") if tsa_cert else None),
        timestamp_time=ts_time,
        is_timestamp_valid=ts_valid,
        is_intact=bool(status.intact),
        is_signature_valid=bool(status.valid),
        covers_whole_document=status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
        revision=sig.signed_revision + 1,
        total_revisions=total,
        has_disallowed_changes=has_disallowed_changes,
        is_trusted=bool(status.trusted),
        has_revocation_data=has_revinfo,
        pades_level=level,
        problems=tuple(problems),
    )


def _text(value: object) -> str | None:
    return str(value) if value is not None else None


@dataclass(frozen=True)
class PanelLine:
    """One line of the Acrobat-style signature panel."""

    is_ok: bool
    text: str


def panel_lines(signature: SignatureReport) -> list[PanelLine]:
    """The report of one signature in the words of Acrobat Reader's signature panel."""
    lines: list[PanelLine] = []
    if signature.is_document_timestamp:
        lines.append(
            PanelLine(True, "文書タイムスタンプは有効です")
            if signature.is_valid
            else PanelLine(False, "文書タイムスタンプは無効です")
        )
    elif signature.is_valid:
        lines.append(PanelLine(True, "署名は有効です"))
    elif signature.is_intact and signature.is_signature_valid and not signature.is_trusted:
        lines.append(PanelLine(False, "署名の有効性は不明です（署名者の身元を確認できません）"))
    else:
        lines.append(PanelLine(False, "署名は無効です"))
    if not (signature.is_intact and signature.is_signature_valid):
        lines.append(PanelLine(False, "この署名が適用された後に文書が改変されています"))
    elif signature.has_disallowed_changes:
        lines.append(PanelLine(False, "この署名が適用された後に、許可されていない変更が文書に加えられています"))
    else:
        lines.append(PanelLine(True, "文書は、この署名が適用されてから変更されていません"))
        if not signature.covers_whole_document:
            lines.append(PanelLine(True, "（署名後に追加されたのは、署名・検証情報・タイムスタンプのみです）"))
    lines.append(
        PanelLine(True, "署名者の証明書は信頼済みのルート証明書に連結しています")
        if signature.is_trusted
        else PanelLine(False, "署名者の証明書は信頼済みのルート証明書に連結していません")
    )
    if not signature.is_document_timestamp:
        if signature.is_timestamp_valid:
            lines.append(PanelLine(True, "埋め込みタイムスタンプが署名に含まれています"))
        elif signature.is_timestamp_valid is None:
            lines.append(PanelLine(False, "署名時刻は署名者のコンピューターの時計に基づいています"))
        else:
            lines.append(PanelLine(False, "署名に含まれるタイムスタンプは無効です"))
    lines.append(
        PanelLine(True, "署名は LTV 対応です")
        if signature.is_ltv
        else PanelLine(False, "署名は LTV 対応ではありません")
    )
    return lines


def to_jst(value: dt.datetime | None) -> str:
    """「2026-04-01 10:02:03 +09:00」, or 「—」."""
    if value is None:
        return "—"
    return value.astimezone(dt.timezone(dt.timedelta(hours=9))).strftime("%Y-%m-%d %H:%M:%S +09:00")
