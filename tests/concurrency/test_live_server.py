"""20 people at once against a live server: page views, signing and search never answer 500, every
party signs once, every mail goes once (SQLite is the case that used to fail; PostgreSQL too)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.contracts.models import ContractStatus, DocumentRevision, Party, PartyStatus
from portal.mail.models import OutboxMessage, OutboxStatus
from portal.mail.service import deliver_pending
from tests.contracts.fixtures import world  # noqa: F401  (fixtures)
from tests.factories import make_staff
from tests.pdfs import make_pdf
from tests.services.live import HttpClient, LiveServer

VENDORS = 8
STAFF = 4


@pytest.fixture
def app_config(pki_dir: str, smtp_server: Any) -> dict[str, Any]:
    return {"PKI_DIR": pki_dir, "AGENCY_NAME": "岡山県", **smtp_server.settings}


def test_twenty_threads_viewing_signing_and_searching(app, world, smtp_server):  # noqa: F811
    links = []
    for number in range(VENDORS):
        world.sent_contract(make_pdf(f"contract {number}", 2), business_name=f"庁舎清掃業務委託 第{number}号")
        links.append(world.signing_link())
    staff_users = [make_staff(world.session, email=f"staff{n}@pref.example.jp", department=world.department)
                   for n in range(STAFF)]
    revisions_before = world.session.scalar(select(func.count()).select_from(DocumentRevision))

    statuses: list[tuple[str, int]] = []
    failures: list[str] = []
    start = threading.Barrier(2 * VENDORS + STAFF)
    vendors_done = threading.Event()

    def note(kind: str, reply: Any) -> None:
        statuses.append((kind, reply.status))
        if reply.status >= 500:
            failures.append(f"{kind} {reply.status}: {reply.text[:300]}")

    def guarded(target: Any) -> Any:
        def run(*args: Any) -> None:
            try:
                target(*args)
            except Exception as exc:  # a thread's failure must fail the test
                failures.append(f"{target.__name__}: {exc!r}")
        return run

    with LiveServer(app) as server:
        staff_clients = []
        for user in staff_users:
            client = HttpClient(server.url)
            client.login(user)
            staff_clients.append(client)

        def vendor(link: str, client: HttpClient, token: str, document: str) -> None:
            start.wait()
            note("page", client.get(link))
            note("image", client.get(f"{link}/documents/{document}/pages/1.jpg"))
            note("sign", client.post(f"{link}/complete", {"csrf_token": token}))

        def double_click(link: str, client: HttpClient, token: str) -> None:
            start.wait()
            note("sign", client.post(f"{link}/complete", {"csrf_token": token}))

        def staff(client: HttpClient) -> None:
            start.wait()
            while not vendors_done.is_set():
                note("search", client.get("/search/?counterparty=%E3%81%91%E3%81%84%E3%82%84%E3%81%8F"))  # けいやく
                note("list", client.get("/contracts/"))

        def mailer() -> None:
            while not vendors_done.is_set():
                with app.app_context():
                    deliver_pending()

        threads = []
        for link in links:
            client = HttpClient(server.url)
            token = client.csrf(link)
            threads.append(threading.Thread(target=guarded(vendor),
                                            args=(link, client, token, _first_document(client, link))))
            threads.append(threading.Thread(target=guarded(double_click), args=(link, client, token)))
        staff_threads = [threading.Thread(target=guarded(staff), args=(c,)) for c in staff_clients]
        staff_threads += [threading.Thread(target=guarded(mailer)) for _ in range(2)]
        for thread in threads + staff_threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        vendors_done.set()
        for thread in staff_threads:
            thread.join(timeout=60)
        server_errors = list(server.errors)

    assert not failures, failures
    assert not server_errors, server_errors[0]
    kinds = Counter(kind for kind, _ in statuses)
    assert kinds["sign"] == 2 * VENDORS
    assert kinds["search"] >= STAFF
    assert all(status == 200 for kind, status in statuses if kind in ("page", "image", "sign", "search", "list"))

    session = world.session
    world.refresh()
    signed = session.scalar(select(func.count()).select_from(AuditEvent)
                            .where(AuditEvent.action == "signer:contract:signed"))
    assert signed == VENDORS
    counterparties = session.scalars(select(Party).where(Party.position == 1)).all()
    assert [p.status for p in counterparties] == [PartyStatus.SIGNED] * VENDORS
    assert {p.contract.status for p in counterparties} == {ContractStatus.AWAITING_AGENCY}
    assert session.scalar(select(func.count()).select_from(DocumentRevision)) == revisions_before + VENDORS

    with app.app_context():
        while deliver_pending():
            pass
    world.refresh()
    outbox = session.scalars(select(OutboxMessage)).all()
    assert {m.status for m in outbox} == {OutboxStatus.SENT}
    delivered = Counter(m["X-Portal-Outbox-Id"] for m in smtp_server.inbox.messages)
    assert delivered == Counter({str(m.id): 1 for m in outbox})


def _first_document(client: HttpClient, link: str) -> str:
    import re

    match = re.search(rf"{re.escape(link)}/documents/(\d+)", client.get(link).text)
    assert match, "no document tab on the signing page"
    return match.group(1)
