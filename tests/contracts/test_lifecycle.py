"""The whole flow of the seed document (sections 3 and 4) through the test client and a real SMTP server."""

from __future__ import annotations

import subprocess
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.contracts.models import Contract, ContractStatus, PartyStatus, RevisionKind
from portal.contracts.signatures import verify_bytes
from portal.formatting import wareki
from portal.mail.service import deliver_pending
from tests.conftest import require_tool
from tests.contracts.fixtures import DOWNLOAD_RE, LINK_RE
from tests.pdfs import make_pdf
from tests.services.smtp import Inbox


@pytest.fixture
def app_config(pki_dir: str, smtp_server: Any) -> dict[str, Any]:
    return {"PKI_DIR": pki_dir, "AGENCY_NAME": "岡山県", **smtp_server.settings}


def _deliver(app: Any) -> None:
    with app.app_context():
        deliver_pending()


def test_create_upload_approve_send_sign_complete_download(app, world, smtp_server, tmp_path):
    contract_id = world.create_id()
    upload = world.upload(contract_id, (make_pdf("Agreement", 2), "契約書.pdf"),
                          (make_pdf("Specification"), "仕様書.pdf"))
    assert upload.status_code == 200
    page = upload.get_data(as_text=True)
    assert "契約書.pdf" in page
    assert "（2ページ・" in page  # and the file size
    assert "仕様書.pdf" in page
    thumbnail = world.staff_client.get(f"/contracts/{contract_id}/documents/1/pages/1.jpg?w=160")
    assert thumbnail.status_code == 200
    assert thumbnail.data[:3] == b"\xff\xd8\xff"

    assert world.approve(contract_id).status_code == 303
    assert world.send(contract_id).status_code == 303
    _deliver(app)

    [request_mail] = smtp_server.inbox.to("yamada@keiyaku-shoji.co.jp")
    assert str(request_mail["Subject"]) == "岡山県 様より庁舎清掃業務委託への署名依頼が届いています"
    body = Inbox.text(request_mail)
    planned = date.fromisoformat(world.contract_form()["planned_conclusion_date"])
    assert f"署名期限: {wareki(planned)}（締結予定日）" in body  # dates for people in 和暦
    assert wareki(planned).startswith("令和")
    assert planned.isoformat() not in body
    link = "/s/" + LINK_RE.search(body).group(0).rsplit("/s/", 1)[1]

    review = world.signer_client.get(link)
    assert review.status_code == 200
    html = review.get_data(as_text=True)
    assert "1. 契約書" in html
    assert "2. 仕様書" in html
    assert "完了する" in html
    assert world.signer_client.get(f"{link}/documents/1/pages/2.jpg").status_code == 200
    confirm = world.signer_client.get(f"{link}/confirm", headers={"HX-Request": "true"})
    assert "署名手続きを完了する" in confirm.get_data(as_text=True)

    done = world.sign_as_counterparty(link)
    assert done.status_code == 200, done.get_data(as_text=True)
    assert "署名手続きが完了しました" in done.get_data(as_text=True)
    _deliver(app)
    [agency_mail] = smtp_server.inbox.to("shonin@pref.example.jp")
    assert "/s/staff/" in Inbox.text(agency_mail)

    contract = world.session.get(Contract, contract_id)
    assert contract.status is ContractStatus.AWAITING_AGENCY
    agency_party = contract.parties[1]
    waiting = world.approver_client.get("/contracts/").get_data(as_text=True)
    assert f"/s/staff/{agency_party.id}" in waiting
    agency_done = world.sign_as_agency(agency_party.id)
    assert agency_done.status_code == 200
    assert "署名手続きが完了しました" in agency_done.get_data(as_text=True), agency_done.get_data(as_text=True)
    _deliver(app)

    world.session.rollback()  # a new snapshot: the app committed in its own session
    contract = world.session.get(Contract, contract_id)
    assert contract.status is ContractStatus.COMPLETED
    assert [p.status for p in contract.parties] == [PartyStatus.SIGNED, PartyStatus.SIGNED]
    assert [r.kind for r in contract.documents[0].revisions] == [
        RevisionKind.ORIGINAL, RevisionKind.SIGNED, RevisionKind.SIGNED, RevisionKind.FINAL]
    completion = [m for m in smtp_server.inbox.messages if str(m["Subject"]) == "電子署名完了のお知らせ"]
    # Every party, and the staff member who sent it (with a link to the contract page, not a download link).
    assert sorted(m["To"].addresses[0].addr_spec for m in completion) == [
        "shonin@pref.example.jp", "tanto@pref.example.jp", "yamada@keiyaku-shoji.co.jp"]
    vendor_body = Inbox.text(next(m for m in completion if "yamada" in str(m["To"])))
    assert "14日間" in vendor_body
    assert contract.number in vendor_body
    assert "電子帳簿保存法" in vendor_body

    download_path = "/d/" + DOWNLOAD_RE.search(vendor_body).group(0).rsplit("/d/", 1)[1]
    listing = world.signer_client.get(download_path)
    assert listing.status_code == 200
    first = contract.documents[0]
    pdf = world.signer_client.get(f"{download_path}/documents/{first.id}")
    assert pdf.status_code == 200
    assert pdf.mimetype == "application/pdf"
    assert __import__("hashlib").sha256(pdf.data).hexdigest() == first.current.sha256

    with app.app_context():
        report = verify_bytes(pdf.data)
    assert report.is_valid, report
    approvals = [s for s in report.signatures if not s.is_document_timestamp]
    assert len(approvals) == 2
    assert any(s.is_document_timestamp for s in report.signatures)
    assert "山田 太郎" in approvals[0].reason
    assert "岡山 花子" in approvals[1].reason
    assert "総務部 契約課" in approvals[1].reason  # the agency's reason names the department

    certificate = world.signer_client.get(f"{download_path}/certificate")
    assert certificate.status_code == 200
    with app.app_context():
        assert verify_bytes(certificate.data).is_valid

    pdfsig = require_tool("pdfsig")
    path = tmp_path / "signed.pdf"
    path.write_bytes(pdf.data)
    output = subprocess.run([pdfsig, str(path)], capture_output=True, text=True, check=False).stdout
    assert output.count("Signature is Valid.") == 2, output

    world.refresh()
    actions = set(world.session.scalars(select(AuditEvent.action).where(AuditEvent.subject_id == str(contract_id))))
    assert {"staff:contract:created", "staff:contract:approved", "staff:contract:sent", "signer:contract:signed",
            "system:contract:completed", "signer:contract:download"} <= actions
