"""After a restore: does the restored instance hold what the backup promised?

- the counts, the newest audit event and the chain's head equal the manifest's;
- every stored file the database refers to decrypts with the restored master key and matches its
  recorded SHA-256 (document revisions, page images, 合意締結証明書, 利用申出書 PDFs);
- every signature of the completed contracts' documents and certificates verifies, by the portal's
  own verifier (with the restored PKI as trust root) and by poppler's pdfsig;
- the operation log's hash chain and its timestamped checkpoints verify (as `flask audit verify`);
- the recorded searches find the same contracts.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from portal.backup import contents

PDFSIG_VALID = "Signature is Valid."


@dataclass
class CheckReport:
    files_checked: int = 0
    documents_verified: int = 0
    signatures_verified: int = 0
    pdfsig_used: bool = False
    audit_chain_checked: bool = False
    searches_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def restored_app(instance: Path, database_url: str, secrets: dict[str, str],
                 storage: Mapping[str, Any] | None = None) -> Flask:
    """The portal over the restored instance (its own database, documents, PKI and keys); the documents in
    `storage` (STORAGE_* settings) when they were restored there, else in the instance's `files`."""
    from portal import create_app

    local = {"STORAGE_BACKEND": "local", "STORAGE_DIR": str(instance / "files")}
    return create_app({
        "INSTANCE_PATH": str(instance), "DATABASE_URL": database_url, **(dict(storage) if storage else local),
        "PKI_DIR": str(instance / "pki"), "OUTBOX_WORKER": False, **secrets,
    })


def check_restored(app: Flask, manifest: dict[str, Any], *, signatures: bool = True) -> CheckReport:
    """Run every check on the restored portal `app`; problems are collected, never raised."""
    report = CheckReport()
    engine = app.extensions["portal.engine"]
    with app.app_context(), engine.connect() as connection:
        found = contents.counts(connection)
        for name, expected in manifest["counts"].items():
            if found.get(name) != expected:
                report.problems.append(f"件数が一致しません: {name} はバックアップ時 {expected}、"
                                       f"復元後 {found.get(name)}")
        session = Session(bind=connection)
        _check_files(session, report)
        if signatures:
            check_signatures(session, report)
        _check_audit_chain(app, report)
        report.problems.extend(contents.search_differences(connection, manifest.get("search", [])))
        report.searches_checked = len(manifest.get("search", []))
        session.close()
    return report


def stored_references(session: Session) -> Iterator[tuple[str, str | None, str, str]]:
    """(storage key, expected SHA-256 or None, what it is, the owner bound into its encryption) of every file
    the database refers to."""
    from portal.contracts.documents import certificate_owner, page_image_owner, revision_owner
    from portal.contracts.models import CertificateRevision, Contract, ContractDocument, DocumentRevision, PageImage
    from portal.usage_requests.models import UsageRequest
    from portal.usage_requests.service import pdf_owner

    revisions = select(DocumentRevision.storage_key, DocumentRevision.sha256, DocumentRevision.id,
                       ContractDocument.contract_id, DocumentRevision.document_id, DocumentRevision.number).join(
        ContractDocument, ContractDocument.id == DocumentRevision.document_id)
    for key, sha256, revision_id, contract_id, document_id, number in session.execute(revisions):
        yield key, sha256, f"文書の版 {revision_id}", revision_owner(contract_id, document_id, number)
    images = select(PageImage.storage_key, PageImage.id, PageImage.sha256, PageImage.page_index, PageImage.width)
    for key, image_id, sha256, index, width in session.execute(images):
        yield key, None, f"ページ画像 {image_id}", page_image_owner(sha256, index, width)
    for key, sha256, number, contract_id in session.execute(
            select(Contract.certificate_key, Contract.certificate_sha256, Contract.number, Contract.id)
            .where(Contract.certificate_key.is_not(None))):
        yield key, sha256, f"合意締結証明書 {number}", certificate_owner(contract_id)
    earlier = (select(CertificateRevision.storage_key, CertificateRevision.sha256, CertificateRevision.number,
                      Contract.number, Contract.id)
               .join(Contract, Contract.id == CertificateRevision.contract_id)
               .where(CertificateRevision.storage_key != func.coalesce(Contract.certificate_key, "")))
    for key, sha256, version, number, contract_id in session.execute(earlier):
        yield key, sha256, f"合意締結証明書 {number}（第{version}版）", certificate_owner(contract_id)
    usage_requests = select(UsageRequest.pdf_key, UsageRequest.pdf_sha256, UsageRequest.id).where(
        UsageRequest.pdf_key.is_not(None))
    for key, sha256, request_id in session.execute(usage_requests):
        yield key, sha256, f"利用申出書 {request_id}", pdf_owner(request_id)


def _check_files(session: Session, report: CheckReport) -> None:
    from portal.storage import StorageError, get_store

    store = get_store()
    for key, sha256, label, owner in stored_references(session):
        report.files_checked += 1
        try:
            data = store.get(key, owner=owner, sha256=None)  # compared with `sha256` below, with its own message
        except StorageError as exc:
            report.problems.append(f"{label} を復号できません: {exc}")
            continue
        if sha256 and hashlib.sha256(data).hexdigest() != sha256:
            report.problems.append(f"{label} の SHA-256 が記録と一致しません。")


def signed_files(session: Session) -> Iterator[tuple[str, str, str]]:
    """(storage key, label, owner) of the current revision of every document of a completed contract, and of
    every 合意締結証明書."""
    from portal.contracts.documents import certificate_owner, revision_owner
    from portal.contracts.models import Contract, ContractDocument, ContractStatus, DocumentRevision

    current = (select(DocumentRevision.document_id, func.max(DocumentRevision.number).label("number"))
               .group_by(DocumentRevision.document_id).subquery())
    rows = session.execute(
        select(DocumentRevision.storage_key, Contract.number, ContractDocument.filename, Contract.id,
               ContractDocument.id, DocumentRevision.number)
        .join(ContractDocument, ContractDocument.id == DocumentRevision.document_id)
        .join(Contract, Contract.id == ContractDocument.contract_id)
        .join(current, and_(current.c.document_id == DocumentRevision.document_id,
                            current.c.number == DocumentRevision.number))
        .where(Contract.status == ContractStatus.COMPLETED).order_by(Contract.id, ContractDocument.position))
    for key, number, filename, contract_id, document_id, revision in rows:
        yield key, f"{number} {filename}", revision_owner(contract_id, document_id, revision)
    for key, number, contract_id in session.execute(select(Contract.certificate_key, Contract.number, Contract.id)
                                                    .where(Contract.certificate_key.is_not(None))
                                                    .order_by(Contract.id)):
        yield key, f"{number} 合意締結証明書", certificate_owner(contract_id)


def check_signatures(session: Session, report: CheckReport, *, limit: int | None = None) -> None:
    """Verify every signature of signed_files() (the first `limit` files) with the portal's verifier, and
    with pdfsig when installed."""
    from portal.signing import pades
    from portal.signing.service import get_context
    from portal.storage import StorageError, get_store

    context = get_context()
    store = get_store()
    pdfsig = shutil.which("pdfsig")
    report.pdfsig_used = pdfsig is not None
    with tempfile.TemporaryDirectory(prefix="restore-check-") as scratch:
        for index, (key, label, owner) in enumerate(signed_files(session)):
            if limit is not None and index >= limit:
                break
            try:
                data = store.get(key, owner=owner, sha256=None)
            except StorageError:
                continue  # reported by the file check
            result = pades.verify(data, context=context)
            approvals = [s for s in result.signatures if not s.is_document_timestamp]
            if not result.is_valid:
                problems = list(result.problems) + [p for s in result.signatures for p in s.problems]
                report.problems.append(f"{label}: 署名を検証できません（{'、'.join(problems) or '無効'}）")
                continue
            report.documents_verified += 1
            report.signatures_verified += len(result.signatures)
            if pdfsig is not None:
                _check_with_pdfsig(pdfsig, data, Path(scratch), len(approvals), label, report.problems.append)


def _check_with_pdfsig(pdfsig: str, data: bytes, scratch: Path, approvals: int, label: str,
                       problem: Callable[[str], None]) -> None:
    path = scratch / "document.pdf"
    path.write_bytes(data)
    output = subprocess.run([pdfsig, str(path)], capture_output=True, text=True, check=False,  # noqa: S603
                            timeout=120).stdout
    if output.count(PDFSIG_VALID) < approvals:
        problem(f"{label}: pdfsig が署名を有効と判定しません。")


def _check_audit_chain(app: Flask, report: CheckReport) -> None:
    """The operation log's hash chain and its timestamped checkpoints (as `flask audit verify`)."""
    from portal.audit import chain
    from portal.signing import timestamps

    with app.extensions["portal.session_factory"]() as session:
        verification = chain.verify(session, check_token=timestamps.check_token)
    report.audit_chain_checked = True
    if not verification.is_ok:
        report.problems.append(f"操作ログの検証: {verification.summary}")
