"""Two people acting on one contract at the same moment: it ends in one consistent state, with one audit
event per transition, and whoever came second reads why (「この契約はすでに…」) instead of a 500.

On SQLite the requests meet in a threaded live server; on PostgreSQL in gunicorn with three worker
processes, so that only the database's row lock stands between them. Every race runs on ROUNDS
contracts at once, which gives both orders a chance to happen.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import clock
from portal.audit.models import AuditEvent
from portal.audit.service import RequestInfo
from portal.auth.models import Role, StaffUser
from portal.contracts import service as contracts
from portal.contracts.models import (
    AUTH_EMAIL_LINK,
    AUTH_PASSWORD,
    AUTH_TOTP,
    Contract,
    ContractStatus,
    PartyStatus,
    RevisionKind,
    SignatureRequest,
)
from portal.mail.models import OutboxMessage
from portal.mail.service import deliverable_body
from portal.signature_requests import service as signing
from tests.conftest import reread
from tests.conftest import test_config as settings_for
from tests.contracts.fixtures import LINK_RE
from tests.factories import make_contract, make_department, make_staff
from tests.pdfs import make_pdf
from tests.services.live import GunicornServer, HttpClient, LiveServer, Reply

ROUNDS = 3
S = ContractStatus


@dataclass
class Race:
    """The people of one department, logged in against the running server."""

    app: Flask
    session: Session
    url: str
    staff: StaffUser
    approver: StaffUser
    staff_client: HttpClient
    approver_client: HttpClient
    replies: dict[str, list[Reply]] = field(default_factory=dict)
    made: int = 0

    def contract(self, *, agency_first: bool = False) -> Contract:
        """A 下書き with one document; each contract's signer has an address of their own."""
        self.made += 1
        return make_contract(self.session, staff=self.staff, approver=self.approver, agency_first=agency_first,
                             signer_email=f"signer{self.made}@keiyaku-shoji.co.jp",
                             documents={"契約書.pdf": make_pdf("Agreement")})

    def approved(self, **kwargs: Any) -> Contract:
        contract = self.contract(**kwargs)
        with self.app.app_context():
            contracts.confirm_internal_approval(self.session, contract, approver=self.approver,
                                                reference="総契第123号", now=clock.now())
            self.session.commit()
        return contract

    def sent(self, **kwargs: Any) -> Contract:
        contract = self.approved(**kwargs)
        with self.app.app_context():
            contracts.send_for_signature(self.session, contract, actor=self.staff, now=clock.now())
            self.session.commit()
        return contract

    def first_signs(self, contract: Contract) -> None:
        """The first signer in order signs (through the service: PAdES, audit), the second is asked."""
        party = contract.parties[0]
        methods = (AUTH_PASSWORD, AUTH_TOTP) if party.staff_user_id else (AUTH_EMAIL_LINK,)
        request = self.session.scalar(select(SignatureRequest).where(SignatureRequest.party_id == party.id))
        with self.app.app_context():
            signing.complete_signature(self.session, party, auth=signing.SignerAuth(methods, RequestInfo()),
                                       now=clock.now(), request=request)
            self.session.commit()

    def link(self, contract: Contract) -> str:
        """The counterparty's signing link, from their request mail in the outbox."""
        email = next(p.email for p in contract.parties if p.staff_user_id is None)
        mails = reread(self.session).scalars(select(OutboxMessage).where(
            OutboxMessage.template == "signature_request", OutboxMessage.recipient == email)
            .order_by(OutboxMessage.id)).all()
        with self.app.app_context():
            match = LINK_RE.search(deliverable_body(mails[-1]))  # the stored body has it masked
        assert match, "no link in the signature request mail"
        return "/s/" + match.group(0).rsplit("/s/", 1)[1]

    def at_once(self, requests: dict[str, list[Callable[[], Reply]]]) -> None:
        """Fire every request from its own thread at the same moment; replies by name, in order."""
        calls = [(name, call) for name, group in requests.items() for call in group]
        start = threading.Barrier(len(calls))
        self.replies = {name: [] for name in requests}
        failures: list[str] = []
        lock = threading.Lock()

        def run(name: str, call: Callable[[], Reply]) -> None:
            try:
                start.wait(timeout=60)
                reply = call()
            except Exception as exc:  # a thread's failure must fail the test
                failures.append(f"{name}: {exc!r}")
                return
            with lock:
                self.replies[name].append(reply)

        threads = [threading.Thread(target=run, args=item) for item in calls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert not failures, failures
        served = [r for group in self.replies.values() for r in group]
        assert len(served) == len(calls)
        server_errors = [f"{r.status}: {r.text[:500]}" for r in served if r.status >= 500]
        assert not server_errors, server_errors

    def events(self, contract: Contract, action: str) -> int:
        query = select(func.count()).select_from(AuditEvent).where(AuditEvent.subject_id == str(contract.id),
                                                                    AuditEvent.action == action)
        return reread(self.session).scalar(query) or 0

    def status(self, contract: Contract) -> ContractStatus:
        reread(self.session)
        return self.session.get(Contract, contract.id).status


def _prepared(client: HttpClient, page: str, path: str, data: dict[str, str] | None = None) -> Callable[[], Reply]:
    """A form POST whose CSRF token is read now, so that only the POST itself races."""
    form = {"csrf_token": client.csrf(page), **(data or {})}
    return lambda: client.post(path, form)


@pytest.fixture(scope="module")
def shared_instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One instance folder (document store) for the tests and the gunicorn processes of this module."""
    return tmp_path_factory.mktemp("races-instance")


@pytest.fixture
def app_config(pki_dir: str, shared_instance: Path) -> dict[str, Any]:
    return {"PKI_DIR": pki_dir, "AGENCY_NAME": "岡山県", "INSTANCE_PATH": str(shared_instance)}


@pytest.fixture(scope="module")
def gunicorn(database_url: str, pki_dir: str, shared_instance: Path) -> Iterator[GunicornServer | None]:
    """On PostgreSQL: gunicorn with three processes, started once for the module (booting takes a while)."""
    if not database_url.startswith("postgresql"):
        yield None
        return
    settings = settings_for(database_url, shared_instance, PKI_DIR=pki_dir, AGENCY_NAME="岡山県")
    with GunicornServer(settings, processes=3) as server:
        yield server


@pytest.fixture
def race(app: Flask, session: Session, gunicorn: GunicornServer | None) -> Iterator[Race]:
    department = make_department(session)
    staff = make_staff(session, role=Role.STAFF, email="tanto@pref.example.jp", department=department)
    approver = make_staff(session, role=Role.APPROVER, email="shonin@pref.example.jp", name="岡山 花子",
                          title="契約課長", department=department)
    with contextlib.ExitStack() as stack:
        server: Any = gunicorn if gunicorn is not None else stack.enter_context(LiveServer(app))
        errors_before = len(server.errors)
        staff_client, approver_client = HttpClient(server.url), HttpClient(server.url)
        staff_client.login(staff)
        approver_client.login(approver)
        yield Race(app, session, server.url, staff, approver, staff_client, approver_client)
        errors = server.errors[errors_before:]
    assert not errors, errors[0]


def _texts(replies: list[Reply]) -> str:
    return "\n".join(r.text for r in replies)


SIGNED_STATES = ("全員の署名が済み、締結処理中です。", "締結済みです。")


def test_six_people_press_send_at_once(race: Race) -> None:
    contract_list = [race.approved() for _ in range(ROUNDS)]
    race.at_once({f"send {c.id}": [_prepared(race.staff_client, f"/contracts/{c.id}", f"/contracts/{c.id}/send")
                                   for _ in range(6)] for c in contract_list})
    for contract in contract_list:
        replies = race.replies[f"send {contract.id}"]
        assert sorted(r.status for r in replies) == [200, 409, 409, 409, 409, 409], [r.status for r in replies]
        assert sum("この契約はすでに署名依頼を送信済みです。署名依頼の送信はできません。" in r.text
                   for r in replies) == 5
        assert race.status(contract) is S.AWAITING_COUNTERPARTY
        assert race.events(contract, "staff:contract:sent") == 1
        assert race.events(contract, "system:contract:signature-requested") == 1
        requests = race.session.scalar(select(func.count()).select_from(SignatureRequest).where(
            SignatureRequest.party_id == contract.parties[0].id))
        assert requests == 1
        mails = race.session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.template == "signature_request", OutboxMessage.recipient == contract.parties[0].email))
        assert mails == 1


def test_sign_and_decline_at_once(race: Race) -> None:
    contract_list = [race.sent() for _ in range(ROUNDS)]
    calls: dict[str, list[Callable[[], Reply]]] = {}
    for contract in contract_list:
        link = race.link(contract)
        signer = HttpClient(race.url)
        calls[f"sign {contract.id}"] = [_prepared(signer, link, f"{link}/complete")]
        calls[f"decline {contract.id}"] = [_prepared(signer, f"{link}/decline", f"{link}/decline",
                                                     {"reason": "金額が見積りと異なります"})]
    race.at_once(calls)
    for contract in contract_list:
        [signed], [declined] = race.replies[f"sign {contract.id}"], race.replies[f"decline {contract.id}"]
        status = race.status(contract)
        party = contract.parties[0]
        revisions = [r.kind for r in contract.documents[0].revisions]
        if status is S.AWAITING_AGENCY:
            assert "署名手続きが完了しました" in signed.text
            assert declined.status == 409, declined.text
            assert "この契約はすでに署名済みです。差し戻しはできません。" in declined.text
            assert party.status is PartyStatus.SIGNED
            assert revisions == [RevisionKind.ORIGINAL, RevisionKind.SIGNED]
            assert (race.events(contract, "signer:contract:signed"),
                    race.events(contract, "signer:contract:declined")) == (1, 0)
        else:
            assert status is S.DECLINED, status
            assert "差し戻しました" in declined.text
            assert signed.status == 410, signed.text
            assert "この契約はすでに差し戻されています。署名はできません。" in signed.text
            assert party.status is PartyStatus.DECLINED
            assert revisions == [RevisionKind.ORIGINAL]
            assert (race.events(contract, "signer:contract:signed"),
                    race.events(contract, "signer:contract:declined")) == (0, 1)


def test_the_last_signature_and_cancel_at_once(race: Race) -> None:
    """The agency signed first; the counterparty's signature completes the contract, unless 取消 came first."""
    contract_list = [race.sent(agency_first=True) for _ in range(ROUNDS)]
    for contract in contract_list:
        race.first_signs(contract)
    calls: dict[str, list[Callable[[], Reply]]] = {}
    for contract in contract_list:
        link = race.link(contract)
        calls[f"sign {contract.id}"] = [_prepared(HttpClient(race.url), link, f"{link}/complete")]
        calls[f"cancel {contract.id}"] = [_prepared(race.staff_client, f"/contracts/{contract.id}",
                                                    f"/contracts/{contract.id}/cancel", {"reason": "事業の中止"})]
    race.at_once(calls)
    for contract in contract_list:
        [signed], [cancelled] = race.replies[f"sign {contract.id}"], race.replies[f"cancel {contract.id}"]
        status = race.status(contract)
        if status is S.COMPLETED:
            assert "署名手続きが完了しました" in signed.text
            assert cancelled.status == 409, cancelled.text
            # refused once the signature committed: while the worker finalizes (締結処理中) or after
            assert any(f"この契約はすでに{state}取消はできません。" in cancelled.text for state in SIGNED_STATES)
            assert (race.events(contract, "system:contract:completed"),
                    race.events(contract, "staff:contract:cancelled")) == (1, 0)
        else:
            assert status is S.CANCELLED, status
            assert "契約を取り消しました" in cancelled.text
            assert signed.status == 410, signed.text
            assert "取り消されたか、紙の契約に移行しました" in signed.text
            assert contract.completed_at is None
            assert contract.certificate_key is None
            assert all(p.status is not PartyStatus.SIGNED for p in contract.parties if p.staff_user_id is None)
            assert (race.events(contract, "system:contract:completed"),
                    race.events(contract, "staff:contract:cancelled")) == (0, 1)
        assert race.events(contract, "signer:contract:signed") == (2 if status is S.COMPLETED else 1)


def test_completion_and_paper_fallback_at_once(race: Race) -> None:
    """The counterparty signed; the approver's signature completes the contract ∥ staff move it to paper."""
    contract_list = [race.sent() for _ in range(ROUNDS)]
    for contract in contract_list:
        race.first_signs(contract)
    calls: dict[str, list[Callable[[], Reply]]] = {}
    for contract in contract_list:
        page = f"/s/staff/{contract.parties[1].id}"
        calls[f"sign {contract.id}"] = [_prepared(race.approver_client, page, f"{page}/complete")]
        calls[f"paper {contract.id}"] = [_prepared(race.staff_client, f"/contracts/{contract.id}",
                                                   f"/contracts/{contract.id}/paper", {"reason": "相手方の申出"})]
    race.at_once(calls)
    for contract in contract_list:
        [signed], [paper] = race.replies[f"sign {contract.id}"], race.replies[f"paper {contract.id}"]
        status = race.status(contract)
        kinds = [r.kind for r in contract.documents[0].revisions]
        if status is S.COMPLETED:
            assert "署名手続きが完了しました" in signed.text
            assert paper.status == 409, paper.text
            assert any(f"この契約はすでに{state}紙契約への移行はできません。" in paper.text for state in SIGNED_STATES)
            assert "紙契約へ移行しました" not in paper.text
            assert kinds[-1] is RevisionKind.FINAL
            assert contract.certificate_key
            assert (race.events(contract, "system:contract:completed"),
                    race.events(contract, "staff:contract:switched-to-paper")) == (1, 0)
        else:
            assert status is S.PAPER, status
            assert "紙契約へ移行しました" in paper.text
            assert signed.status == 410, signed.text
            assert "紙の契約に移行しました" in signed.text
            assert RevisionKind.FINAL not in kinds
            assert contract.certificate_key is None
            assert contract.parties[1].status is not PartyStatus.SIGNED
            assert (race.events(contract, "system:contract:completed"),
                    race.events(contract, "staff:contract:switched-to-paper")) == (0, 1)


def test_send_and_upload_at_once(race: Race) -> None:
    """Sending must never carry a document the approver has not seen: either the upload voids the 決裁
    first (and sending is refused), or the contract is sent and the upload is refused."""
    contract_list = [race.approved() for _ in range(ROUNDS)]
    calls: dict[str, list[Callable[[], Reply]]] = {}
    for contract in contract_list:
        page = f"/contracts/{contract.id}"
        calls[f"send {contract.id}"] = [_prepared(race.staff_client, page, f"{page}/send")]
        token = race.staff_client.csrf(page)
        calls[f"upload {contract.id}"] = [lambda page=page, token=token: race.staff_client.post_files(
            f"{page}/documents", {"csrf_token": token}, [("files", "追加仕様書.pdf", make_pdf("Annex"))])]
    race.at_once(calls)
    for contract in contract_list:
        [sent], [uploaded] = race.replies[f"send {contract.id}"], race.replies[f"upload {contract.id}"]
        status = race.status(contract)
        documents = [d.filename for d in contract.documents]
        if status is S.AWAITING_COUNTERPARTY:
            assert sent.status == 200, sent.text
            assert uploaded.status == 422, uploaded.text
            assert "この契約はすでに署名依頼を送信済みです。文書は変更できません。" in uploaded.text
            assert documents == ["契約書.pdf"]
            assert contract.approved_digest == contracts.documents_digest(contract)
            assert (race.events(contract, "staff:contract:sent"),
                    race.events(contract, "system:contract:approval-voided")) == (1, 0)
        else:
            assert status is S.DRAFT, status
            assert uploaded.status == 200, uploaded.text
            assert sent.status == 422, sent.text
            assert "決裁（内部承認）が確認されていません" in sent.text
            assert documents == ["契約書.pdf", "追加仕様書.pdf"]
            assert contract.approved_at is None
            assert (race.events(contract, "staff:contract:sent"),
                    race.events(contract, "system:contract:approval-voided")) == (0, 1)
