"""No one obtains another person's working link: not from the 送信メール page, any other page an
admin, staff member or auditor can reach, the API, the logs, or the database's stored mails.

The links are read where only their owner reads them: the mails that arrived at the SMTP server.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, text

from portal import clock
from portal.audit.models import AuditEvent
from portal.auth import service as auth_service
from portal.auth.models import Role
from portal.db import Base
from portal.mail.models import OutboxMessage, OutboxStatus
from portal.mail.service import deliver_pending
from tests.api.helpers import bearer, token_for
from tests.conftest import post_form
from tests.contracts.fixtures import DOWNLOAD_RE, LINK_RE
from tests.factories import login_as, make_staff
from tests.services.smtp import Inbox

TOKEN_RE = re.compile(r"/(?:s|d|account/enrol)/([A-Za-z0-9_-]{40,})")
HREF_RE = re.compile(r'(?:href|hx-get|src|action)="([^"#]+)')
SKIPPED = ("/logout", "/login")
MAX_PAGES = 400


@pytest.fixture
def app_config(pki_dir: str, smtp_server: Any) -> dict[str, Any]:
    return {"PKI_DIR": pki_dir, "AGENCY_NAME": "岡山県", **smtp_server.settings}


def _deliver(app: Any) -> None:
    with app.app_context():
        deliver_pending()


def _links_in_inbox(smtp_server: Any) -> dict[str, str]:
    """token → the address it was mailed to, for every one-time link that reached the SMTP server."""
    found = {}
    for message in smtp_server.inbox.messages:
        for token in TOKEN_RE.findall(Inbox.text(message)):
            found[token] = message["To"].addresses[0].addr_spec
    return found


def _crawl(client: FlaskClient, start: Iterable[str]) -> dict[str, bytes]:
    """GET every page reachable from `start` by links, forms and htmx attributes on this host."""
    seen: dict[str, bytes] = {}
    queue = list(start)
    while queue and len(seen) < MAX_PAGES:
        url = queue.pop(0).replace("&amp;", "&")
        if url.startswith("http://localhost"):
            url = url[len("http://localhost"):] or "/"
        if (not url.startswith("/") or url.startswith("//") or url in seen or url.startswith(SKIPPED)
                or "/static/" in url):
            continue
        response = client.get(url)
        seen[url] = response.get_data() + str(response.headers).encode()
        if response.mimetype == "text/html":
            queue.extend(HREF_RE.findall(response.get_data(as_text=True)))
        response.close()
    return seen


def _assert_no_token(where: str, content: bytes, tokens: Iterable[str]) -> None:
    for token in tokens:
        assert token.encode() not in content, f"a working link ({token[:4]}…) is readable at {where}"


def test_admin_staff_and_auditor_cannot_obtain_a_working_link(app, world, smtp_server, session, caplog):
    caplog.set_level(logging.DEBUG, logger="portal")
    completed_id = world.sent_contract()
    _deliver(app)
    [signing] = [t for t, to in _links_in_inbox(smtp_server).items() if to == "yamada@keiyaku-shoji.co.jp"]
    assert world.sign_as_counterparty(f"/s/{signing}").status_code == 200
    assert world.sign_as_agency(world.party_ids(completed_id)[1]).status_code == 200
    waiting_id = world.sent_contract(signer_email="sato@keiyaku-shoji.co.jp", signer_name="佐藤 次郎")
    with app.app_context():
        auth_service.create_user(session, email="new@pref.example.jp", name="新任 職員", role=Role.STAFF,
                                 department=world.department, title="", actor=None, now=clock.now())
        session.commit()
    _deliver(app)
    tokens = _links_in_inbox(smtp_server)
    recipients = set(tokens.values())
    assert {"yamada@keiyaku-shoji.co.jp", "sato@keiyaku-shoji.co.jp", "new@pref.example.jp",
            "shonin@pref.example.jp"} <= recipients  # signing, download and enrolment links all arrived
    live = [t for t in tokens if t != signing]

    admin = make_staff(session, role=Role.ADMIN, email="kanri@pref.example.jp", department=world.department)
    auditor = make_staff(session, role=Role.AUDITOR, email="kansa@pref.example.jp", department=world.department)
    clients = {"staff": world.staff_client, "approver": world.approver_client}
    for name, user in (("admin", admin), ("auditor", auditor)):
        clients[name] = app.test_client()
        login_as(clients[name], user)
    start = ["/", "/contracts/", f"/contracts/{completed_id}", f"/contracts/{waiting_id}", "/admin/mail/",
             "/search/", "/admin/", "/admin/users"]
    for role, client in clients.items():
        pages = _crawl(client, start)
        assert len(pages) > 10, sorted(pages)
        for url, content in pages.items():
            _assert_no_token(f"{url} as {role}", content, tokens)
    admin_pages = _crawl(clients["admin"], ["/admin/mail/"])
    assert sum(url.startswith("/admin/mail/") and url != "/admin/mail/" for url in admin_pages) >= 6

    api = app.test_client()
    for email in (world.staff.email, auditor.email):
        headers = bearer(token_for(app, email))
        for url in ("/api/v1/contracts", f"/api/v1/contracts/{completed_id}", f"/api/v1/contracts/{waiting_id}",
                    "/api/v1/contracts/1/documents/1", "/api/v1/openapi.json"):
            _assert_no_token(f"{url} (API)", api.get(url, headers=headers).get_data(), tokens)

    _assert_no_token("the log", caplog.text.encode(), tokens)
    world.refresh()
    for table in Base.metadata.sorted_tables:
        dump = repr(session.execute(text(f'SELECT * FROM "{table.name}"')).all()).encode()
        _assert_no_token(f"table {table.name}", dump, tokens)
    assert live  # and they still work for the people they were mailed to
    waiting = [t for t, to in tokens.items() if to == "sato@keiyaku-shoji.co.jp"]
    assert world.signer_client.get(f"/s/{waiting[0]}").status_code == 200


def test_a_link_taken_from_the_stored_mail_does_not_sign(app, world, smtp_server):
    contract_id = world.sent_contract()
    _deliver(app)
    [stored] = world.outbox("signature_request")
    assert stored.status is OutboxStatus.SENT
    assert stored.body_sealed is None
    assert "(マスク済み)" in stored.body
    assert not LINK_RE.search(stored.body)
    masked = re.search(r"https?://\S+/s/(\S+)", stored.body)
    assert masked, stored.body
    for candidate in {masked.group(1), masked.group(1).split("…")[0]}:
        assert world.signer_client.get(f"/s/{candidate}").status_code == 404
        assert post_form(world.signer_client, f"/s/{candidate}/complete", {}, page="/apply").status_code == 404
    assert world.contract(contract_id).parties[0].signed_at is None
    [mail] = smtp_server.inbox.to("yamada@keiyaku-shoji.co.jp")
    assert LINK_RE.search(Inbox.text(mail)), "the signer's own mail keeps the working link"


def test_held_mail_keeps_links_sealed_and_opening_it_is_logged(app, world, session):
    app.config["MAIL_SERVER"] = ""
    world.completed_contract()
    admin = make_staff(session, role=Role.ADMIN, email="kanri@pref.example.jp", department=world.department)
    client = app.test_client()
    login_as(client, admin)
    mails = world.outbox("signature_completed")
    assert mails
    assert all(m.status is OutboxStatus.HELD for m in mails)
    for mail in mails:
        assert not DOWNLOAD_RE.search(mail.body)
        assert mail.body_sealed
        assert DOWNLOAD_RE.search(world.delivered_body(mail))
        page = client.get(f"/admin/mail/{mail.id}").get_data(as_text=True)
        assert "/d/" in page
        assert "(マスク済み)" in page
        assert not DOWNLOAD_RE.search(page)
    world.refresh()
    viewed = session.scalars(select(AuditEvent).where(AuditEvent.action == "admin:mail:viewed")).all()
    assert sorted(int(e.subject_id) for e in viewed) == sorted(m.id for m in mails)
    assert {e.actor_user_id for e in viewed} == {admin.id}
    assert session.get(OutboxMessage, mails[0].id) is not None
