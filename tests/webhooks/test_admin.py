"""Admins register webhook endpoints on a page and by CLI; the secret is shown once and stored sealed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal import clock
from portal.auth.models import Role
from portal.webhooks import service
from portal.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from tests.conftest import post_form, reread
from tests.factories import login_as, make_department, make_staff
from tests.services.webhook_receiver import WebhookReceiver

EVENTS = ["contract.completed", "contract.signed"]


@pytest.fixture
def admin_client(app, session):
    admin = make_staff(session, role=Role.ADMIN, email="kanri@pref.example.jp", department=make_department(session))
    client = app.test_client()
    login_as(client, admin)
    return client


def _endpoints(session) -> list[WebhookEndpoint]:
    return list(reread(session).scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def test_register_on_the_page_shows_the_secret_once_and_seals_it(app, session, admin_client):
    response = post_form(admin_client, "/admin/webhooks", {"url": "https://bunsho.pref.example.jp/hooks",
                                                           "description": "文書管理システム", "events": EVENTS})
    assert response.status_code == 200, response.get_data(as_text=True)
    html = response.get_data(as_text=True)
    secret = html.split('<code class="secret">')[1].split("</code>")[0]
    assert secret.startswith("whsec_")
    [endpoint] = _endpoints(session)
    assert endpoint.events == EVENTS
    assert secret not in endpoint.secret_sealed
    with app.app_context():
        assert service.endpoint_secret(endpoint) == secret
    page = admin_client.get("/admin/webhooks").get_data(as_text=True)
    assert secret not in page
    assert "https://bunsho.pref.example.jp/hooks" in page
    assert secret not in admin_client.get(f"/admin/webhooks/{endpoint.id}").get_data(as_text=True)


@pytest.mark.parametrize(("url", "message"), [
    ("javascript:alert(1)", "http:// または https://"),
    ("file:///etc/passwd", "http:// または https://"),
    ("ftp://files.example.jp/in", "http:// または https://"),
    ("https://user:pass@example.jp/hooks", "パスワード"),
    ("https://exa mple.jp/hooks", "空白"),
    ("https:///nohost", "ホスト名"),
    ("https://example.jp:99999/", "ポート番号"),
])
def test_only_http_and_https_urls_are_accepted(app, session, admin_client, url, message):
    response = post_form(admin_client, "/admin/webhooks", {"url": url, "events": EVENTS})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert _endpoints(session) == []


def test_no_event_chosen_or_a_too_long_description_is_refused(app, session, admin_client):
    none = post_form(admin_client, "/admin/webhooks", {"url": "https://example.jp/h"})
    assert none.status_code == 422
    assert "イベントを一つ以上" in none.get_data(as_text=True)
    long = post_form(admin_client, "/admin/webhooks", {"url": "https://example.jp/h", "events": EVENTS,
                                                       "description": "x" * 201})
    assert long.status_code == 422
    assert "200文字以内" in long.get_data(as_text=True)
    markup = post_form(admin_client, "/admin/webhooks", {"url": "https://example.jp/h", "events": EVENTS,
                                                         "description": "<script>alert(1)</script>"})
    assert markup.status_code == 200
    assert "<script>alert(1)</script>" not in admin_client.get("/admin/webhooks").get_data(as_text=True)


def test_failed_deliveries_are_visible_and_can_be_retried(app, session, admin_client):
    app.config["WEBHOOK_GIVE_UP_HOURS"] = 0  # the first failure is final
    receiver = WebhookReceiver(status=503).start()
    try:
        with app.app_context():
            endpoint, _ = service.create_endpoint(session, url=receiver.url, events=EVENTS, actor=None,
                                                  now=clock.now())
            service.enqueue_event(session, "contract.completed", {"contract": {"number": "KEI-2026-0001"}},
                                  now=clock.now())
            session.commit()
            with app.extensions["portal.session_factory"]() as worker:
                service.deliver_due(worker)
        page = admin_client.get("/admin/webhooks").get_data(as_text=True)
        assert "配信に失敗したイベント" in page
        assert "HTTP 503" in page
        detail = admin_client.get(f"/admin/webhooks/{endpoint.id}").get_data(as_text=True)
        assert "失敗" in detail
        [delivery] = reread(session).scalars(select(WebhookDelivery)).all()
        assert delivery.status is DeliveryStatus.FAILED

        receiver.status = 200
        app.config["WEBHOOK_GIVE_UP_HOURS"] = 72
        retried = post_form(admin_client, f"/admin/webhooks/deliveries/{delivery.id}/retry", {},
                            page="/admin/webhooks")
        assert retried.status_code == 303
        with app.app_context(), app.extensions["portal.session_factory"]() as worker:
            assert service.deliver_due(worker) == 1
    finally:
        receiver.stop()
    assert len(receiver.received) == 2
    [delivery] = reread(session).scalars(select(WebhookDelivery)).all()
    assert delivery.status is DeliveryStatus.DELIVERED


def test_edit_disable_rotate_and_delete(app, session, admin_client):
    post_form(admin_client, "/admin/webhooks", {"url": "https://example.jp/h", "events": EVENTS})
    [endpoint] = _endpoints(session)
    with app.app_context():
        old_secret = service.endpoint_secret(endpoint)
    saved = post_form(admin_client, f"/admin/webhooks/{endpoint.id}", {"url": "https://example.jp/v2",
                                                                       "events": ["contract.sent"]})
    assert saved.status_code == 303
    [endpoint] = _endpoints(session)
    assert endpoint.url == "https://example.jp/v2"
    assert endpoint.events == ["contract.sent"]
    assert endpoint.is_active is False  # the box was not ticked
    rotated = post_form(admin_client, f"/admin/webhooks/{endpoint.id}/secret", {},
                        page=f"/admin/webhooks/{endpoint.id}")
    new_secret = rotated.get_data(as_text=True).split('<code class="secret">')[1].split("</code>")[0]
    with app.app_context():
        assert service.endpoint_secret(_endpoints(session)[0]) == new_secret != old_secret
    deleted = post_form(admin_client, f"/admin/webhooks/{endpoint.id}/delete", {},
                        page=f"/admin/webhooks/{endpoint.id}")
    assert deleted.status_code == 303
    assert _endpoints(session) == []


def test_only_admins_see_the_page(app, session):
    staff = make_staff(session, role=Role.STAFF, email="tanto@pref.example.jp")
    client = app.test_client()
    login_as(client, staff)
    assert client.get("/admin/webhooks").status_code == 403
    assert app.test_client().get("/admin/webhooks").status_code == 302  # to the login page


def test_cli_create_list_disable_delete(app, session):
    runner = app.test_cli_runner()
    created = runner.invoke(args=["webhooks", "create", "--url", "https://bunsho.pref.example.jp/hooks",
                                  "--events", "contract.completed,contract.cancelled", "--description", "文書管理"])
    assert created.exit_code == 0, created.output
    secret = created.output.strip().splitlines()[-1]
    [endpoint] = _endpoints(session)
    with app.app_context():
        assert service.endpoint_secret(endpoint) == secret
    listing = runner.invoke(args=["webhooks", "list"])
    assert "https://bunsho.pref.example.jp/hooks" in listing.output
    assert "contract.cancelled,contract.completed" in listing.output
    assert secret not in listing.output
    assert runner.invoke(args=["webhooks", "disable", str(endpoint.id)]).exit_code == 0
    assert _endpoints(session)[0].is_active is False
    refused = runner.invoke(args=["webhooks", "create", "--url", "gopher://x", "--events", "all"])
    assert refused.exit_code == 1
    assert "http:// または https://" in refused.output
    unknown = runner.invoke(args=["webhooks", "create", "--url", "https://x.jp", "--events", "contract.exploded"])
    assert unknown.exit_code == 1
    assert runner.invoke(args=["webhooks", "delete", str(endpoint.id)]).exit_code == 0
    assert _endpoints(session) == []
