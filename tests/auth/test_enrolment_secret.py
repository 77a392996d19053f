"""The TOTP secret being enrolled is kept sealed on the server, never in the (readable) session cookie."""

from __future__ import annotations

import json
import re

import pyotp
from flask.sessions import SecureCookieSessionInterface

from tests.conftest import csrf_from, post_form
from tests.factories import PASSWORD, make_staff


def _cookie_contents(app, client) -> str:
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    return json.dumps(SecureCookieSessionInterface().get_signing_serializer(app).loads(cookie.value))


def test_enrolment_secret_is_not_in_the_session_cookie(app, session):
    user = make_staff(session, enrolled=False)
    client = app.test_client()
    assert post_form(client, "/login", {"email": user.email, "password": PASSWORD}).status_code == 302
    page = client.get("/account/mfa").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    assert secret not in _cookie_contents(app, client)
    # The same secret is shown again (kept on the server), and enrolment completes with it.
    again = client.get("/account/mfa").get_data(as_text=True)
    assert f'id="totp-secret">{secret}<' in again
    response = client.post("/account/mfa", data={"csrf_token": csrf_from(again), "code": pyotp.TOTP(secret).now()})
    assert response.status_code == 200
    assert secret not in _cookie_contents(app, client)
    session.refresh(user)
    assert user.is_mfa_enrolled
    assert user.totp_pending_sealed is None
