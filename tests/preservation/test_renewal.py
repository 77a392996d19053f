"""Archive-timestamp renewal: a document whose timestamp's TSA certificate is about to expire gets
fresh validation data and a new document timestamp, and then verifies after that expiry; a document
that is not due is left byte for byte."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import time
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import crl as asn1_crl
from flask import Flask
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import DocumentSecurityStore
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.audit.actions import AuditAction
from portal.audit.models import AuditEvent
from portal.backup.checks import stored_references
from portal.cli import referenced_keys
from portal.contracts.documents import certificate_owner, read_certificate, read_revision
from portal.contracts.models import CertificateRevision, Contract, ContractDocument, DocumentRevision, RevisionKind
from portal.jobs.models import JobLease
from portal.preservation import renewal
from portal.signing import pades, service
from portal.signing import pki as local_pki
from portal.signing.context import SigningContext
from portal.signing.lifecycle import renew_due_certificates
from portal.signing.pades import Approval, finalize, sign_approval
from portal.signing.revocation import LocalFirstFetcherBackend
from portal.storage import get_store
from portal.storage.gc import find_orphans
from tests.conftest import reread
from tests.factories import make_department, make_staff
from tests.pdfs import make_pdf
from tests.search.factories import make_contract
from tests.signing.conftest import BASE_URL

SETTINGS = {"PUBLIC_BASE_URL": BASE_URL, "AGENCY_NAME": "テスト市", "SERVICE_NAME": "テスト市電子契約"}


@pytest.fixture
def short_pki(tmp_path: Path) -> Path:
    """A PKI whose TSA certificate expires in 10 days."""
    directory = tmp_path / "pki"
    pki = service.ensure_pki({**SETTINGS, "PKI_DIR": str(directory)})
    local_pki.renew_certificate(pki, local_pki.TSA_NAME, lifetime=dt.timedelta(days=10))
    return directory


@pytest.fixture
def app_config(short_pki: Path) -> dict[str, Any]:
    return {**SETTINGS, "PKI_DIR": str(short_pki)}


def _context(app: Flask) -> SigningContext:
    return service.configure(app.config)


def _completed(session: Session, app: Flask, *, count: int = 1, certificate: bool = False) -> list[int]:
    """Completed contracts, each with one B-LTA document finalized now (and, with `certificate`, a B-LTA
    合意締結証明書); their document ids."""
    context = _context(app)
    department = make_department(session)
    staff = make_staff(session, department=department)
    approval = Approval("山田 太郎", "yamada@vendor.example.co.jp", clock.now())
    data = finalize(sign_approval(make_pdf("keiyaku"), approval, context=context), context=context)
    ids = []
    for number in range(count):
        contract = make_contract(session, number=f"R-{number:03d}", department=department, created_by=staff,
                                 transaction_date=dt.date(2026, 4, 1), amount=1_100_000, tax_amount=100_000,
                                 documents={f"R-{number:03d}.pdf": data},
                                 certificate=_certificate(context) if certificate else None)
        ids.append(contract.documents[0].id)
    return ids


def _certificate(context: SigningContext) -> bytes:
    """A B-LTA PDF standing in for a 合意締結証明書 (the renewal treats it as any signed file)."""
    issued = Approval("テスト市", "keiyaku@pref.example.jp", clock.now())
    return finalize(sign_approval(make_pdf("certificate"), issued, context=context), context=context)


def _current_bytes(app: Flask, session: Session, document_id: int) -> tuple[DocumentRevision, bytes]:
    document = reread(session).get(ContractDocument, document_id)
    assert document is not None
    with app.app_context():
        return document.current, read_revision(document.current)


def _as_validator_at(context: SigningContext, moment: dt.datetime) -> SigningContext:
    """The context of a validator at `moment`: it fetches the CRL the portal publishes then."""
    pki = context.pki
    assert pki is not None
    published: dict[str, bytes] = {}

    def source(url: str) -> bytes | None:
        if url != pki.crl_url:
            return None
        if "crl" not in published:
            published["crl"] = local_pki.issue_crl(pki, [], now=moment - dt.timedelta(hours=1))
        return published["crl"]

    return dataclasses.replace(context, fetcher_backend_factory=lambda: LocalFirstFetcherBackend(source))


def _dss_crl_times(data: bytes) -> list[dt.datetime]:
    reader = PdfFileReader(io.BytesIO(data), strict=False)
    crls = [asn1_crl.CertificateList.load(ref.get_object().data) for ref in DocumentSecurityStore.read_dss(reader).crls]
    return [crl["tbs_cert_list"]["this_update"].native for crl in crls]


def _renew_certificates(app: Flask, session: Session) -> None:
    with app.app_context():
        renew_due_certificates(session, service.ensure_pki(app.config), app.config, now=clock.now())
        session.commit()


def test_renewed_document_verifies_after_the_first_tsa_certificate_has_expired(app: Flask, session: Session) -> None:
    (document_id,) = _completed(session, app)
    first_revision, first = _current_bytes(app, session, document_id)
    expiry = pades.newest_document_timestamp(first)
    assert expiry is not None
    assert expiry.tsa_not_after - clock.now() < dt.timedelta(days=11)
    time.sleep(1.1)  # the renewal's CRL is issued after the first document timestamp, as it would be years later
    _renew_certificates(app, session)  # the built-in TSA gets a new key and certificate (due: 10 days left)

    result = app.test_cli_runner().invoke(args=["timestamps", "renew"])

    assert result.exit_code == 0, result.output
    assert "更新 1 件" in result.output
    revision, renewed = _current_bytes(app, session, document_id)
    assert revision.kind is RevisionKind.ARCHIVE_TIMESTAMP
    assert revision.number == first_revision.number + 1
    assert renewed.startswith(first)  # an incremental update: the signed bytes are untouched
    newest = pades.newest_document_timestamp(renewed)
    assert newest is not None
    assert revision.timestamp_at == newest.time == pades.latest_timestamp_time(renewed)  # the export's time
    assert newest.tsa_not_after > expiry.tsa_not_after + dt.timedelta(days=365)
    assert pades.verify(renewed, context=_context(app)).is_valid
    assert max(_dss_crl_times(renewed)) > expiry.time  # fresh revocation data for the first TSA certificate
    after_expiry = expiry.tsa_not_after + dt.timedelta(days=10)
    validator = _as_validator_at(_context(app), after_expiry)
    assert pades.long_term_validation(renewed, context=validator, at=after_expiry).is_valid
    assert not pades.long_term_validation(first, context=validator, at=after_expiry).is_valid
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == AuditAction.DOCUMENT_TIMESTAMP_RENEWED))
    assert [event.details["revision"] for event in events] == [revision.number]


def test_a_run_on_documents_not_due_changes_nothing(app: Flask, session: Session) -> None:
    (document_id,) = _completed(session, app)
    time.sleep(1.1)
    _renew_certificates(app, session)
    assert app.test_cli_runner().invoke(args=["timestamps", "renew"]).exit_code == 0
    revision, renewed = _current_bytes(app, session, document_id)  # now timestamped by a 5-year certificate

    result = app.test_cli_runner().invoke(args=["timestamps", "renew"])

    assert result.exit_code == 0, result.output
    assert "更新 0 件" in result.output
    again, data = _current_bytes(app, session, document_id)
    assert (again.id, data) == (revision.id, renewed)
    count = session.query(DocumentRevision).filter_by(document_id=document_id).count()
    assert count == revision.number


def test_a_due_document_is_held_while_the_tsa_would_sign_with_the_same_certificate(
    app: Flask, session: Session
) -> None:
    (document_id,) = _completed(session, app)
    revision, data = _current_bytes(app, session, document_id)

    status = app.test_cli_runner().invoke(args=["timestamps", "status"])
    result = app.test_cli_runner().invoke(args=["timestamps", "renew"])

    assert "更新できない 1 件" in status.output
    assert "保留 1 件" in result.output
    assert "先に証明書を更新してください" in result.output
    assert _current_bytes(app, session, document_id) == (revision, data)


def test_a_weak_digest_makes_a_document_due(app: Flask, session: Session) -> None:
    (document_id,) = _completed(session, app)
    time.sleep(1.1)
    _renew_certificates(app, session)
    assert app.test_cli_runner().invoke(args=["timestamps", "renew"]).exit_code == 0
    _, renewed = _current_bytes(app, session, document_id)
    newest = pades.newest_document_timestamp(renewed)
    assert newest is not None

    reasons, blocked = renewal.assess(newest, {**app.config, "TIMESTAMP_WEAK_DIGESTS": ["SHA256"]}, _context(app),
                                      now=clock.now())
    not_due, _ = renewal.assess(newest, app.config, _context(app), now=clock.now())

    assert reasons == ("ハッシュ関数 sha256 は弱いとされています",)
    assert blocked is not None  # the TSA in use signs with that same certificate
    assert not_due == ()


def test_the_daily_job_renews_each_document_once_across_two_worker_processes(
    app: Flask, session: Session, tmp_path: Path
) -> None:
    from tests.jobs.test_worker_processes import _finish, _start_workers

    document_ids = _completed(session, app, count=4, certificate=True)
    time.sleep(1.1)
    _renew_certificates(app, session)

    processes = _start_workers(app, tmp_path, seconds=10, TIMESTAMP_CHECK_SECONDS=2)
    outputs = _finish(processes)

    assert all(process.returncode == 0 for process in processes), outputs
    events = reread(session).scalars(
        select(AuditEvent).where(AuditEvent.action == AuditAction.DOCUMENT_TIMESTAMP_RENEWED)).all()
    # each document and each 合意締結証明書 once, though both workers ran the job repeatedly
    assert len(events) == 2 * len(document_ids)
    assert sorted(reread(session).scalars(select(CertificateRevision.number))) == [1] * 4 + [2] * 4
    for document_id in document_ids:
        revision, data = _current_bytes(app, session, document_id)
        assert revision.kind is RevisionKind.ARCHIVE_TIMESTAMP
        assert revision.number == 2
        assert pades.verify(data, context=_context(app)).is_valid
    lease = session.get(JobLease, renewal.RENEWAL_JOB)
    assert lease is not None
    assert lease.runs >= 2
    assert lease.last_error == ""


def test_a_due_certificate_is_renewed_as_its_new_version_and_the_old_one_is_kept(app: Flask, session: Session) -> None:
    (document_id,) = _completed(session, app, certificate=True)
    contract = reread(session).get(ContractDocument, document_id).contract  # type: ignore[union-attr]
    contract_id, first_key, first_sha256 = contract.id, contract.certificate_key, contract.certificate_sha256
    with app.app_context():
        first = read_certificate(contract)
    expiry = pades.newest_document_timestamp(first)
    assert expiry is not None
    time.sleep(1.1)
    _renew_certificates(app, session)

    status = app.test_cli_runner().invoke(args=["timestamps", "status"])
    assert "合意締結証明書.pdf" in status.output, status.output
    result = app.test_cli_runner().invoke(args=["timestamps", "renew"])

    assert result.exit_code == 0, result.output
    assert "更新 2 件" in result.output  # the document and the certificate
    contract = reread(session).get(Contract, contract_id)
    assert contract is not None
    assert contract.certificate_sha256 != first_sha256
    versions = reread(session).scalars(select(CertificateRevision).where(CertificateRevision.contract_id == contract_id)
                                       .order_by(CertificateRevision.number)).all()
    assert [(v.number, v.kind, v.sha256) for v in versions] == [
        (1, RevisionKind.FINAL, first_sha256), (2, RevisionKind.ARCHIVE_TIMESTAMP, contract.certificate_sha256)]
    with app.app_context():
        renewed = read_certificate(contract)
        kept = get_store().get(first_key, owner=certificate_owner(contract_id), sha256=first_sha256)
        references = [label for _key, _sha, label, _owner in stored_references(session)]
    assert kept == first  # the first version is still stored, byte for byte
    assert renewed.startswith(first)
    assert versions[1].timestamp_at == pades.latest_timestamp_time(renewed)
    after_expiry = expiry.tsa_not_after + dt.timedelta(days=10)
    validator = _as_validator_at(_context(app), after_expiry)
    assert pades.long_term_validation(renewed, context=validator, at=after_expiry).is_valid
    assert not pades.long_term_validation(first, context=validator, at=after_expiry).is_valid
    assert "合意締結証明書 R-000（第1版）" in references  # the backup checks read the earlier version too
    with app.app_context():  # the storage gc, run when the files are old enough to be collected
        orphans = find_orphans(get_store(), referenced_keys(reread(session)), now=clock.now() + dt.timedelta(days=1))
    assert first_key not in {orphan.name for orphan in orphans}  # still referenced: the storage gc keeps it
    [event] = reread(session).scalars(select(AuditEvent).where(
        AuditEvent.action == AuditAction.DOCUMENT_TIMESTAMP_RENEWED, AuditEvent.details["certificate"].as_boolean()))
    assert (event.details["previous_sha256"], event.details["sha256"]) == (first_sha256, contract.certificate_sha256)
    again = app.test_cli_runner().invoke(args=["timestamps", "renew"])
    assert "更新 0 件" in again.output, again.output  # renewed once: not due any more
