"""「組織のアカウントでログイン」 against a real OpenID provider (node-oidc-provider, from npm) on loopback.

The portal side runs in the Flask test client; the browser's trip through the provider is made with
`requests` (its own cookies), so state, nonce, PKCE and the code exchange are the real protocol.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

import pytest
import requests
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.audit.actions import AuditAction
from portal.audit.models import AuditEvent
from portal.auth.models import Role
from tests.conftest import post_form, require, reread
from tests.factories import make_staff, totp_code
from tests.services import oidc

REDIRECT_URI = "http://localhost/login/sso/callback"
ACCOUNTS: dict[str, dict[str, Any]] = {
    "takahashi": {"email": "staff@pref.example.jp", "email_verified": True, "name": "髙橋 一郎", "amr": ["pwd"]},
    "mfa-user": {"email": "staff@pref.example.jp", "email_verified": True, "name": "髙橋 一郎",
                 "amr": ["pwd", "otp"]},
    "stranger": {"email": "nobody@pref.example.jp", "email_verified": True, "name": "部外者", "amr": ["pwd"]},
    "disabled": {"email": "gone@pref.example.jp", "email_verified": True, "name": "退職者", "amr": ["pwd", "otp"]},
    "unverified": {"email": "staff@pref.example.jp", "email_verified": False, "name": "髙橋", "amr": ["pwd"]},
}


@pytest.fixture(scope="module")
def provider() -> Iterator[oidc.OidcProvider]:
    reason = oidc.install()
    require(reason is None, reason or "")
    with oidc.running_provider(REDIRECT_URI, ACCOUNTS) as running:
        yield running


@pytest.fixture
def app_config(provider: oidc.OidcProvider) -> dict[str, Any]:
    return provider.settings()


@pytest.fixture
def staff(session):
    return make_staff(session, role=Role.STAFF, email="staff@pref.example.jp")


def start(client: FlaskClient) -> str:
    response = client.get("/login/sso")
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def through_provider(authorize_url: str, account: str) -> str:
    """The browser at the provider: log in as `account`; returns the URL it is sent back to."""
    browser = requests.Session()
    url = f"{authorize_url}&{urlencode({'login_hint': account})}"
    for _ in range(10):
        response = browser.get(url, allow_redirects=False, timeout=10)
        assert response.status_code in (302, 303), response.text
        url = urljoin(url, response.headers["Location"])
        if url.startswith(REDIRECT_URI):
            return url
    raise AssertionError("the provider never sent the browser back")


def back_at_portal(client: FlaskClient, callback_url: str, **replace: str):
    parts = urlsplit(callback_url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    query.update(replace)
    return client.get(urlunsplit(("", "", parts.path, urlencode(query), "")))


def logged_in(client: FlaskClient) -> bool:
    return client.get("/contracts/").status_code == 200


def sso_failures(session) -> list[str]:
    rows = reread(session).scalars(select(AuditEvent).where(AuditEvent.action == AuditAction.SSO_FAILED.value))
    return [row.details["reason"] for row in rows]


def test_login_page_offers_the_organisation_account(client):
    html = client.get("/login").get_data(as_text=True)
    assert "組織のアカウントでログイン" in html
    assert 'href="/login/sso' in html


def test_success_then_the_portals_totp_when_the_provider_asserts_no_second_factor(client, staff, provider):
    response = back_at_portal(client, through_provider(start(client), "takahashi"))
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/login/verify")
    assert not logged_in(client)
    assert post_form(client, "/login/verify", {"code": totp_code(staff)}).status_code == 302
    assert logged_in(client)


def test_second_factor_asserted_by_the_provider_logs_in_at_once(client, staff, session, provider):
    response = back_at_portal(client, through_provider(start(client), "mfa-user"))
    assert response.status_code == 302
    assert not response.headers["Location"].endswith("/login/verify")
    assert logged_in(client)
    event = reread(session).scalars(select(AuditEvent).where(
        AuditEvent.action == AuditAction.SSO_SUCCEEDED.value)).one()
    assert event.details["mfa_asserted"] is True


def test_wrong_state_is_refused(client, staff, session, provider):
    callback = through_provider(start(client), "mfa-user")
    response = back_at_portal(client, callback, state="forged-state")
    assert response.status_code == 403
    assert "組織のアカウントでのログインを完了できませんでした" in response.get_data(as_text=True)
    assert not logged_in(client)
    assert any("MismatchingStateError" in reason for reason in sso_failures(session))


def test_a_replayed_code_is_refused(client, staff, session, provider):
    first = through_provider(start(client), "mfa-user")
    assert back_at_portal(client, first).status_code == 302
    client.post("/logout", data={"csrf_token": ""})
    attacker = client.application.test_client()
    fresh_state = parse_qs(urlsplit(start(attacker)).query)["state"][0]
    response = back_at_portal(attacker, first, state=fresh_state)  # the used code, with a state that is valid
    assert response.status_code == 403
    assert not logged_in(attacker)
    assert any("invalid_grant" in reason for reason in sso_failures(session))


def test_an_id_token_whose_nonce_does_not_match_the_session_is_refused(client, staff, session, provider):
    authorize = start(client)
    state = parse_qs(urlsplit(authorize).query)["state"][0]
    callback = through_provider(authorize, "mfa-user")
    # The ID token carries the nonce of this login attempt; the session now expects another one, as it would
    # if the token had been minted for someone else's attempt. (PKCE already binds the code to this attempt.)
    with client.session_transaction() as stored:
        key = next(key for key in stored if key.endswith(state))
        stored[key] = {**stored[key], "data": {**stored[key]["data"], "nonce": "another-attempt"}}
    response = back_at_portal(client, callback)
    assert response.status_code == 403
    assert not logged_in(client)
    assert any("nonce" in reason.lower() for reason in sso_failures(session)), sso_failures(session)


def test_unknown_user_is_refused_and_nothing_is_created(client, staff, session, provider):
    response = back_at_portal(client, through_provider(start(client), "stranger"))
    assert response.status_code == 403
    assert "nobody@pref.example.jp はこのポータルに登録されていません" in response.get_data(as_text=True)
    assert not logged_in(client)
    assert "unknown-user" in sso_failures(session)


def test_disabled_user_is_refused(client, session, provider):
    make_staff(session, email="gone@pref.example.jp", is_active=False)
    response = back_at_portal(client, through_provider(start(client), "disabled"))
    assert response.status_code == 403
    assert "無効になっています" in response.get_data(as_text=True)
    assert not logged_in(client)


def test_an_unverified_email_is_refused(client, staff, provider):
    response = back_at_portal(client, through_provider(start(client), "unverified"))
    assert response.status_code == 403
    assert "確認済みではない" in response.get_data(as_text=True)
    assert not logged_in(client)


def test_an_expired_id_token_is_refused(app, client, staff, session):
    reason = oidc.install()
    require(reason is None, reason or "")
    with oidc.running_provider(REDIRECT_URI, ACCOUNTS, clock_offset_seconds=-3600) as stale:
        app.config.update(stale.settings())
        from portal.auth import oidc as portal_oidc

        portal_oidc.init_app(app)
        response = back_at_portal(client, through_provider(start(client), "mfa-user"))
    assert response.status_code == 403
    assert not logged_in(client)
    assert any("expired" in reason.lower() for reason in sso_failures(session))


def test_password_login_can_be_switched_off_except_for_break_glass_admins(app, client, staff, session):
    admin = make_staff(session, role=Role.ADMIN, email="breakglass@pref.example.jp")
    app.config.update(PASSWORD_LOGIN=False, BREAK_GLASS_ADMINS="breakglass@pref.example.jp")
    refused = post_form(client, "/login", {"email": staff.email, "password": "correct horse battery staple"})
    assert refused.status_code == 403
    assert "パスワードでのログインは無効" in refused.get_data(as_text=True)
    from tests.factories import PASSWORD

    allowed = post_form(client, "/login", {"email": admin.email, "password": PASSWORD})
    assert allowed.status_code == 302
