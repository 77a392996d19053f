"""One-time codes and the failed-login counter under parallel requests, against gunicorn with several worker
processes (each with its threads and database connections), on SQLite and PostgreSQL:

- one TOTP code sent by 8 browsers at once gives exactly one session;
- one recovery code sent by 6 browsers at once gives exactly one session;
- 20 wrong passwords at once are checked exactly LOGIN_MAX_FAILURES times, then the account is locked;
  no request answers 5xx.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from portal.audit.actions import AuditAction
from portal.audit.models import AuditEvent
from portal.auth import passwords
from portal.auth.models import RecoveryCode, StaffUser
from tests.conftest import reread
from tests.conftest import test_config as portal_test_config
from tests.factories import PASSWORD, make_staff, totp_code
from tests.services.live import GunicornServer, HttpClient, Reply, at_once

LOGGED_IN = 'action="/logout"'
PROCESSES = 3


@pytest.fixture(scope="module")
def gunicorn(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    root = tmp_path_factory.mktemp("gunicorn")
    config = portal_test_config(database_url, root / "instance", OUTBOX_WORKER=False)
    with GunicornServer(config, processes=PROCESSES) as server:
        yield server




def _after_password(server: GunicornServer, user: StaffUser, count: int) -> list[tuple[HttpClient, str]]:
    """`count` browsers past the password step, each with the CSRF token of its code form."""
    browsers = []
    for _ in range(count):
        browser = HttpClient(server.url)
        reply = browser.post_form("/login", {"email": user.email, "password": PASSWORD})
        assert reply.status == 200, reply.text[:300]
        assert "確認コード" in reply.text, reply.text[:300]
        browsers.append((browser, browser.csrf("/login/verify")))
    return browsers


def _events(session: Any, action: AuditAction, user: StaffUser) -> list[AuditEvent]:
    reread(session)
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action.value,
                                                         AuditEvent.subject_id == str(user.id))))


def _no_server_errors(server: GunicornServer, replies: list[Reply]) -> None:
    assert all(reply.status < 500 for reply in replies), [r.text[:300] for r in replies if r.status >= 500]
    assert not server.errors, server.errors[0]


def test_one_totp_code_gives_one_session(gunicorn, session):
    user = make_staff(session)
    browsers = _after_password(gunicorn, user, 8)
    code = totp_code(user)
    replies = at_once([
        (lambda b=browser, t=token: b.post("/login/verify", {"csrf_token": t, "code": code}))
        for browser, token in browsers
    ])
    _no_server_errors(gunicorn, replies)
    assert sum(LOGGED_IN in reply.text for reply in replies) == 1, Counter(r.status for r in replies)
    assert sum(LOGGED_IN in browser.get("/contracts/").text for browser, _ in browsers) == 1
    assert len(_events(session, AuditAction.LOGIN_SUCCEEDED, user)) == 1


def test_one_recovery_code_gives_one_session(gunicorn, session, app):
    user = make_staff(session)
    with app.app_context():
        session.add(RecoveryCode(user_id=user.id, code_hash=passwords.hash_secret("ab12c-3de45")))
        session.commit()
    browsers = _after_password(gunicorn, user, 6)
    replies = at_once([
        (lambda b=browser, t=token: b.post("/login/verify", {"csrf_token": t, "code": "ab12c-3de45"}))
        for browser, token in browsers
    ])
    _no_server_errors(gunicorn, replies)
    assert sum(LOGGED_IN in reply.text for reply in replies) == 1, Counter(r.status for r in replies)
    assert len(_events(session, AuditAction.MFA_RECOVERY_USED, user)) == 1
    assert len(_events(session, AuditAction.LOGIN_SUCCEEDED, user)) == 1
    assert session.scalar(select(RecoveryCode.used_at).where(RecoveryCode.user_id == user.id)) is not None


def test_parallel_wrong_passwords_are_checked_only_up_to_the_lock(gunicorn, session, app):
    limit = app.config["LOGIN_MAX_FAILURES"]
    user = make_staff(session)
    browsers = [HttpClient(gunicorn.url) for _ in range(20)]
    tokens = [browser.csrf("/login") for browser in browsers]
    replies = at_once([
        (lambda b=browser, t=token: b.post("/login", {"csrf_token": t, "email": user.email,
                                                      "password": "wrong password!!"}))
        for browser, token in zip(browsers, tokens, strict=True)
    ])
    _no_server_errors(gunicorn, replies)
    statuses = Counter(reply.status for reply in replies)
    assert statuses == Counter({422: limit - 1, 429: 20 - (limit - 1)}), statuses
    assert sum("ロックしました" in reply.text for reply in replies) == 1
    failed = _events(session, AuditAction.LOGIN_FAILED, user)
    assert sorted(event.details["attempts"] for event in failed) == list(range(1, limit + 1))
    assert len(_events(session, AuditAction.LOGIN_LOCKED, user)) == 1
    # Locked: even the right password is refused now.
    reply = HttpClient(gunicorn.url).post_form("/login", {"email": user.email, "password": PASSWORD})
    assert reply.status == 429
    assert "分後に再度お試しください" in reply.text


def test_two_admins_lifting_one_lock_at_once_log_it_once(gunicorn, session):
    from datetime import timedelta

    from portal import clock
    from portal.auth.models import Role

    user = make_staff(session, email="locked@pref.example.jp", locked_until=clock.now() + timedelta(minutes=10),
                      failed_attempts=5)
    admins = [make_staff(session, role=Role.ADMIN, email=f"admin{n}@pref.example.jp") for n in range(2)]
    browsers = []
    for admin in admins:
        browser = HttpClient(gunicorn.url)
        browser.login(admin)
        browsers.append((browser, browser.csrf(f"/admin/users/{user.id}")))
    replies = at_once([
        (lambda b=browser, t=token: b.post(f"/admin/users/{user.id}/unlock", {"csrf_token": t}))
        for browser, token in browsers
    ])
    _no_server_errors(gunicorn, replies)
    assert sum("ロックを解除しました。" in reply.text for reply in replies) == 1, [r.text[:200] for r in replies]
    assert sum("ロックされていません" in reply.text for reply in replies) == 1
    assert len(_events(session, AuditAction.USER_UNLOCKED, user)) == 1
    assert reread(session).get(StaffUser, user.id).locked_until is None
    assert HttpClient(gunicorn.url).post_form("/login", {"email": user.email, "password": PASSWORD}).status == 200
