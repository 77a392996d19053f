"""差戻し → correction: the return mail's one-time link opens /apply pre-filled with what was sent and the
reason; submitting creates the corrected request linked to the returned one; two staff reviewing at once
and two resubmits at once each end one way."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.auth.models import Role
from portal.usage_requests.models import UsageRequest, UsageRequestStatus
from tests.conftest import post_form, reread
from tests.factories import login_as, make_staff
from tests.services.live import HttpClient, LiveServer, at_once
from tests.usage_requests.conftest import deliver, form_data, make_usage_request

CORRECT_RE = re.compile(r"https?://\S+(/apply/correct/[A-Za-z0-9_-]{40,})")
REASON = "契約締結権限者の役職が空欄です。役職を記入してください。"


@pytest.fixture
def app_config(mail_app_config):
    return mail_app_config


@pytest.fixture
def reviewer(session, department, client):
    staff = make_staff(session, department=department, role=Role.STAFF)
    login_as(client, staff)
    return staff


def _return(client, usage_request, reason=REASON):
    show = f"/usage-requests/{usage_request.id}"
    return post_form(client, f"{show}/return", {"reason": reason}, page=show)


def _correction_path(app, smtp_server) -> str:
    deliver(app)
    mails = smtp_server.inbox.to("hanako@keiyaku-shoji.example.jp")
    match = CORRECT_RE.search(smtp_server.inbox.text(mails[-1]))
    assert match, smtp_server.inbox.text(mails[-1])
    return match.group(1)


def _requests(session) -> int:
    return reread(session).scalar(select(func.count()).select_from(UsageRequest))


def test_the_return_mail_opens_the_form_pre_filled_and_resubmitting_links_the_correction(
        app, client, session, department, reviewer, smtp_server):
    returned = make_usage_request(session, department, authority_title="")
    assert _return(client, returned).status_code == 303
    path = _correction_path(app, smtp_server)
    stored = reread(session).get(UsageRequest, returned.id)
    assert stored.correction_token_hash
    assert path.rsplit("/", 1)[1] not in (stored.correction_token_hash or "")  # only the hash is kept

    vendor = app.test_client()
    page = vendor.get(path).get_data(as_text=True)
    assert REASON in page
    assert 'value="株式会社けいやく商事"' in page
    assert 'value="ichiro@keiyaku-shoji.example.jp"' in page
    assert re.search(r'<option selected value="KEI"|value="KEI" selected', page)
    response = post_form(vendor, path, form_data(authority_title="代表取締役"))
    assert response.status_code == 303, response.get_data(as_text=True)
    corrected = reread(session).scalars(select(UsageRequest).order_by(UsageRequest.id.desc())).first()
    assert corrected.corrects_id == returned.id
    assert corrected.authority_title == "代表取締役"
    assert corrected.status == UsageRequestStatus.AWAITING_EMAIL  # confirmed by mail like any new request
    assert reread(session).get(UsageRequest, returned.id).correction_used_at is not None
    used = vendor.get(path)
    assert used.status_code == 410
    assert "すでに使われ" in used.get_data(as_text=True)
    assert post_form(vendor, path, form_data(), page="/apply").status_code == 410
    assert _requests(session) == 2


def test_an_unknown_or_expired_link_says_so_in_words(app, client, session, department, reviewer, smtp_server):
    from portal import clock

    returned = make_usage_request(session, department)
    _return(client, returned)
    path = _correction_path(app, smtp_server)
    unknown = app.test_client().get("/apply/correct/" + "x" * 43)
    assert unknown.status_code == 404
    assert "このリンクは無効です" in unknown.get_data(as_text=True)
    stored = reread(session).get(UsageRequest, returned.id)
    stored.correction_expires_at = clock.now() - timedelta(minutes=1)
    session.commit()
    expired = app.test_client().get(path)
    assert expired.status_code == 410
    assert "有効期限（30日）が切れています" in expired.get_data(as_text=True)


@pytest.mark.parametrize(("field", "value"), [
    ("company_name", "株式会社\u202eけいやく"), ("authority_email", "ichiro@gmail.com"),
    ("contract_name", "業" * 201), ("jv_members", "A社\x00"), ("department", "NOPE"),
])
def test_hostile_corrections_are_refused_and_the_link_still_works(app, client, session, department, reviewer,
                                                                 smtp_server, field, value):
    returned = make_usage_request(session, department)
    _return(client, returned)
    path = _correction_path(app, smtp_server)
    vendor = app.test_client()
    response = post_form(vendor, path, form_data(**{field: value}))
    assert response.status_code == 422
    assert _requests(session) == 1
    assert reread(session).get(UsageRequest, returned.id).correction_used_at is None
    assert vendor.get(path).status_code == 200


def test_two_staff_accepting_and_returning_at_once_end_one_way(app, session, department):
    usage_request = make_usage_request(session, department)
    staff = [make_staff(session, department=department, role=Role.STAFF, email=f"rev{n}@pref.example.jp")
             for n in range(4)]
    show = f"/usage-requests/{usage_request.id}"
    with LiveServer(app) as server:
        clients = []
        for user in staff:
            http = HttpClient(server.url)
            http.login(user)
            clients.append((http, http.csrf(show)))
        calls = [lambda c=c, t=t: c.post(f"{show}/accept", {"csrf_token": t}) for c, t in clients[:2]]
        calls += [lambda c=c, t=t: c.post(f"{show}/return", {"csrf_token": t, "reason": "差戻し"})
                  for c, t in clients[2:]]
        replies = at_once(calls)
    assert not server.errors, "\n".join(server.errors)
    assert 500 not in [r.status for r in replies]
    stored = reread(session).get(UsageRequest, usage_request.id)
    assert stored.status in (UsageRequestStatus.ACCEPTED, UsageRequestStatus.RETURNED)
    refused = [r for r in replies if r.status == 422]
    assert all("すでに" in r.text for r in refused)
    from portal.audit.models import AuditEvent

    decisions = reread(session).scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action.in_(
        ["staff:usage-request:accepted", "staff:usage-request:returned"])))
    assert decisions == 1


def test_two_resubmits_at_once_create_one_corrected_request(app, client, session, department, reviewer,
                                                           smtp_server):
    returned = make_usage_request(session, department)
    _return(client, returned)
    path = _correction_path(app, smtp_server)
    with LiveServer(app) as server:
        vendors = []
        for _ in range(3):
            http = HttpClient(server.url)
            vendors.append((http, http.csrf(path)))
        replies = at_once([lambda v=v, t=t: v.post(path, {**form_data(), "csrf_token": t}) for v, t in vendors])
    assert not server.errors, "\n".join(server.errors)
    statuses = sorted(r.status for r in replies)
    assert 500 not in statuses
    assert statuses.count(200) == 1, statuses
    assert _requests(session) == 2
