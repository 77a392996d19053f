"""Fixtures and helpers shared by tests/contracts, tests/signature_requests and tests/downloads.

The PKI is tests.conftest.shared_pki_dir() (one per test run); PDFs come from tests/pdfs.py.
"""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import stream_encode_multipart

from portal import clock
from portal.auth.models import Department, Role, StaffUser
from portal.clock import JST
from portal.mail.models import OutboxMessage
from tests.conftest import csrf_from, post_form, shared_pki_dir
from tests.factories import login_as, make_department, make_staff
from tests.pdfs import make_pdf

LINK_RE = re.compile(r"https?://\S+/s/[A-Za-z0-9_-]{40,}")
DOWNLOAD_RE = re.compile(r"https?://\S+/d/[A-Za-z0-9_-]{40,}")


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"PKI_DIR": shared_pki_dir(), "AGENCY_NAME": "岡山県", "CONTACT_PHONE": "086-000-0000"}


def today() -> date:
    return clock.now().astimezone(JST).date()


class World:
    """A department with a 担当者 (uploader) and a 承認者, each with a logged-in client."""

    def __init__(self, app: Flask, session: Session) -> None:
        self.app = app
        self.session = session
        self.signed_links: dict[int, str] = {}  # contract id → the counterparty's link it was signed with
        self.department: Department = make_department(session, code="KEI", name="総務部 契約課")
        self.staff: StaffUser = make_staff(session, role=Role.STAFF, email="tanto@pref.example.jp",
                                           name="髙橋 一郎", department=self.department)
        self.approver: StaffUser = make_staff(session, role=Role.APPROVER, email="shonin@pref.example.jp",
                                              name="岡山 花子", title="契約課長", department=self.department)
        self.staff_client = app.test_client()
        login_as(self.staff_client, self.staff)
        self.approver_client = app.test_client()
        login_as(self.approver_client, self.approver)
        self.signer_client = app.test_client()

    def register_counterparty(self, name: str = "株式会社けいやく商事", *, title: str = "代表取締役",
                              signer: str = "山田 太郎", email: str = "yamada@keiyaku-shoji.co.jp") -> Any:
        """The 取引先 as an accepted 利用申出書 registers it, with its 契約締結権限者 (R10); committed."""
        from portal.counterparties import service as counterparties

        now = clock.now()
        counterparty = counterparties.upsert_counterparty(self.session, name=name, now=now)
        if counterparty.current_authority is None:
            counterparties.set_signing_authority(self.session, counterparty, title=title, name=signer, email=email,
                                                 source="usage_request", now=now)
        self.session.commit()
        return counterparty

    def contract_form(self, **overrides: Any) -> dict[str, Any]:
        """The new-contract form for a registered 取引先 (counterparty_name picks or registers it). Signer
        fields that differ from its authority are sent as 「別の署名者」 with a reason, unless given."""
        name = overrides.pop("counterparty_name", "株式会社けいやく商事")
        if "counterparty_id" not in overrides:
            counterparty = self.register_counterparty(name)
            overrides["counterparty_id"] = str(counterparty.id)
            authority = counterparty.current_authority
            signer = {"signer_title": authority.title, "signer_name": authority.name, "signer_email": authority.email,
                      "signer_organization": counterparty.name}
            if any(k in overrides and overrides[k] != v for k, v in signer.items()):
                overrides.setdefault("signer_override", "y")
                overrides.setdefault("signer_override_reason", "テストのため登録とは別の署名者にする")
        data: dict[str, Any] = {
            "business_name": "庁舎清掃業務委託",
            "contract_type": "委託",
            "amount": "1100000",
            "tax_amount": "100000",
            "transaction_date": today().isoformat(),
            "term_start": today().isoformat(),
            "term_end": (today() + timedelta(days=364)).isoformat(),
            "planned_conclusion_date": (today() + timedelta(days=10)).isoformat(),
            "signer_title": "代表取締役",
            "signer_name": "山田 太郎",
            "signer_email": "yamada@keiyaku-shoji.co.jp",
            "approver_email": self.approver.email,
            "signing_order": "counterparty_first",
        }
        data.update(overrides)
        return {k: v for k, v in data.items() if v is not None}

    def create(self, client: FlaskClient | None = None, **overrides: Any) -> Any:
        return post_form(client or self.staff_client, "/contracts/new", self.contract_form(**overrides))

    def create_id(self, **overrides: Any) -> int:
        response = self.create(**overrides)
        assert response.status_code == 303, response.get_data(as_text=True)
        return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])

    def upload(self, contract_id: int, *files: tuple[bytes, str], client: FlaskClient | None = None) -> Any:
        client = client or self.staff_client
        token = csrf_from(client.get(f"/contracts/{contract_id}").get_data(as_text=True))
        data = MultiDict([("csrf_token", token)] + [
            ("files", FileStorage(io.BytesIO(content), filename=name, content_type="application/pdf"))
            for content, name in files])
        # Encoded in memory: werkzeug would spool a large body to a temporary file that nobody closes.
        body, length, boundary = stream_encode_multipart(data, use_tempfile=False)
        return client.post(f"/contracts/{contract_id}/documents", input_stream=body, content_length=length,
                           content_type=f"multipart/form-data; boundary={boundary}")

    def approve(self, contract_id: int, reference: str = "総契第123号", client: FlaskClient | None = None) -> Any:
        return post_form(client or self.approver_client, f"/contracts/{contract_id}/approve",
                         {"reference": reference}, page=f"/contracts/{contract_id}")

    def send(self, contract_id: int) -> Any:
        return post_form(self.staff_client, f"/contracts/{contract_id}/send", {}, page=f"/contracts/{contract_id}")

    def sent_contract(self, *documents: bytes, **overrides: Any) -> int:
        """Create, upload, approve and send; returns the contract id."""
        contract_id = self.create_id(**overrides)
        files = documents or (make_pdf("Agreement", 2),)
        assert self.upload(contract_id, *[(d, f"doc{i}.pdf") for i, d in enumerate(files, 1)]).status_code == 200
        assert self.approve(contract_id).status_code == 303
        response = self.send(contract_id)
        assert response.status_code == 303, response.get_data(as_text=True)
        return contract_id

    def refresh(self) -> None:
        """See what the app committed (SQLite WAL keeps a read transaction on its snapshot)."""
        self.session.rollback()

    def completed_contract(self, *documents: bytes, **overrides: Any) -> int:
        """A contract both parties have signed (counterparty first); returns its id."""
        contract_id = self.sent_contract(*documents, **overrides)
        # Kept: once signed, the link's mail (held here, no SMTP server) is withdrawn and its body erased.
        self.signed_links[contract_id] = link = self.signing_link()
        response = self.sign_as_counterparty(link)
        assert "署名手続きが完了しました" in response.get_data(as_text=True), response.get_data(as_text=True)
        response = self.sign_as_agency(self.party_ids(contract_id)[1])
        assert "署名手続きが完了しました" in response.get_data(as_text=True), response.get_data(as_text=True)
        return contract_id

    def party_ids(self, contract_id: int) -> list[int]:
        from portal.contracts.models import Party

        self.refresh()
        return list(self.session.scalars(select(Party.id).where(Party.contract_id == contract_id)
                                         .order_by(Party.position)))

    def contract(self, contract_id: int) -> Any:
        from portal.contracts.models import Contract

        self.refresh()
        return self.session.get(Contract, contract_id)

    def outbox(self, template: str | None = None) -> list[OutboxMessage]:
        self.session.rollback()  # end the read snapshot: the app has committed since
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if template:
            query = query.where(OutboxMessage.template == template)
        return list(self.session.scalars(query))

    def delivered_body(self, message: OutboxMessage) -> str:
        """A held mail as it would be delivered: the stored body has its links masked."""
        from portal.mail.service import deliverable_body

        with self.app.app_context():
            return deliverable_body(message)

    def download_path(self, recipient: str) -> str:
        """The path of the download link in `recipient`'s completion mail."""
        [mail] = [m for m in self.outbox("signature_completed") if m.recipient == recipient]
        match = DOWNLOAD_RE.search(self.delivered_body(mail))
        assert match
        return "/d/" + match.group(0).rsplit("/d/", 1)[1]

    def signing_link(self) -> str:
        """The path of the newest signature request link in the outbox."""
        bodies = [self.delivered_body(m) for m in self.outbox("signature_request")]
        assert bodies, "no signature request mail"
        match = LINK_RE.search(bodies[-1])
        assert match
        return "/s/" + match.group(0).rsplit("/s/", 1)[1]

    def sign_as_counterparty(self, link: str, client: FlaskClient | None = None, **form: str) -> Any:
        client = client or self.signer_client
        return post_form(client, f"{link}/complete", form, page=link)

    def sign_as_agency(self, party_id: int) -> Any:
        page = f"/s/staff/{party_id}"
        return post_form(self.approver_client, f"{page}/complete", {}, page=page)


@pytest.fixture
def world(app: Flask, session: Session) -> World:
    return World(app, session)


def break_tsa(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on the configured TSA refuses connections, as an unreachable RFC 3161 server would
    (monkeypatch.undo() brings it back).

    (An HttpTsa pointed at a closed port works too, but portal.signing leaves its aiohttp session
    unclosed when the context is rebuilt, which pytest reports as an unraisable warning.)
    """
    from aiohttp import ClientConnectionError

    from portal.contracts.signatures import context

    with app.app_context():
        timestamper = context().tsa.timestamper

    async def refuse(request: Any) -> Any:
        raise ClientConnectionError("Cannot connect to host tsa.example.jp:80")

    monkeypatch.setattr(timestamper, "async_request_tsa_response", refuse)


@pytest.fixture
def tsa_down(app: Flask, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The TSA is unreachable for the whole test (see break_tsa())."""
    break_tsa(app, monkeypatch)
    return monkeypatch
