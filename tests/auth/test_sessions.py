"""Logout ends the session, and every copy of its cookie: a per-user session version, raised by logout,
a password change, an MFA reset and deactivation, is compared on every request."""

from __future__ import annotations

import threading
from datetime import timedelta

from portal import clock
from portal.auth import service
from portal.auth.models import Role
from portal.db import db
from tests.conftest import post_form
from tests.factories import login_as, make_staff
from tests.services.live import HttpClient, LiveServer

LOGGED_IN = 'action="/logout"'
READERS = 6


def _next_totp_step() -> None:
    """A TOTP code is accepted once: the next login of the same user waits for the next code."""
    clock.freeze(clock.now() + timedelta(seconds=30))


def test_cookie_copied_before_logout_stops_working_at_logout(app, session):
    """Threads keep using a copy of the cookie while its owner logs out: every request that starts after
    the logout answered is refused, none answers 5xx."""
    user = make_staff(session)
    with LiveServer(app) as server:
        owner = HttpClient(server.url)
        owner.login(user)
        logout_token = owner.csrf("/")
        copies = []
        for _ in range(READERS):
            copy = HttpClient(server.url)
            copy.copy_cookies_from(owner)
            assert LOGGED_IN in copy.get("/contracts/").text
            copies.append(copy)

        logged_out = threading.Event()
        stop = threading.Event()
        after_logout: list[tuple[int, bool]] = []
        failures: list[str] = []

        def reader(copy: HttpClient) -> None:
            try:
                while not stop.is_set():
                    started_after = logged_out.is_set()
                    reply = copy.get("/contracts/")
                    if reply.status >= 500:
                        failures.append(f"{reply.status}: {reply.text[:200]}")
                    if started_after:
                        after_logout.append((reply.status, LOGGED_IN in reply.text))
            except Exception as exc:
                failures.append(repr(exc))

        threads = [threading.Thread(target=reader, args=(copy,)) for copy in copies]
        for thread in threads:
            thread.start()
        reply = owner.post("/logout", {"csrf_token": logout_token})
        logged_out.set()
        assert reply.status == 200
        assert "ログアウトしました。" in reply.text
        while len(after_logout) < 3 * READERS and not failures:
            threading.Event().wait(0.05)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert not failures, failures
        assert not server.errors, server.errors[0]
        assert after_logout
        assert not any(logged_in for _, logged_in in after_logout), after_logout
        assert LOGGED_IN not in copies[0].get("/contracts/").text
        # A new login works, and does not revive the old cookie.
        _next_totp_step()
        owner.login(user)
        assert LOGGED_IN in owner.get("/contracts/").text
        assert LOGGED_IN not in copies[0].get("/contracts/").text


def _stale_client(app, user):
    client = app.test_client()
    login_as(client, user)
    assert client.get("/contracts/").status_code == 200
    return client


def test_logout_in_one_browser_ends_the_others(app, session):
    user = make_staff(session)
    first = _stale_client(app, user)
    _next_totp_step()
    second = _stale_client(app, user)
    post_form(first, "/logout", {}, page="/")
    assert second.get("/contracts/").status_code == 302


def test_password_change_ends_every_session(app, session):
    user = make_staff(session)
    client = _stale_client(app, user)
    with app.test_request_context():
        service.set_password(db(), db().merge(user), "another long password", "another long password",
                             now=clock.now())
        db().commit()
    assert client.get("/contracts/").status_code == 302


def test_deactivation_and_mfa_reset_end_every_session(app, session):
    admin = make_staff(session, role=Role.ADMIN, email="admin@pref.example.jp")
    staff = make_staff(session, email="s@pref.example.jp", department=admin.department)
    other = make_staff(session, email="o@pref.example.jp", department=admin.department)
    admin_client = app.test_client()
    login_as(admin_client, admin)
    staff_client, other_client = _stale_client(app, staff), _stale_client(app, other)
    post_form(admin_client, f"/admin/users/{staff.id}/active", {"active": "0"}, page=f"/admin/users/{staff.id}")
    post_form(admin_client, f"/admin/users/{staff.id}/active", {"active": "1"}, page=f"/admin/users/{staff.id}")
    assert staff_client.get("/contracts/").status_code == 302  # re-enabling does not bring the session back
    post_form(admin_client, f"/admin/users/{other.id}/reset-mfa", {}, page=f"/admin/users/{other.id}")
    assert other_client.get("/contracts/").status_code == 302
    assert admin_client.get("/contracts/").status_code == 200
