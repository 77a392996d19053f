"""Link tokens are masked wherever text about them is kept for others: stored mails and log lines."""

from __future__ import annotations

import io
import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from portal.tokens import MASK, mask_tokens, new_token
from portal.urls import external_url

LINKS = [("signature_requests.review", {}), ("downloads.show", {}), ("auth.enrol", {}), ("auth.setup", {}),
         ("usage_requests.confirm", {})]


@pytest.mark.parametrize(("endpoint", "values"), LINKS)
def test_every_mailed_link_is_masked(app, endpoint, values):
    token, _hash = new_token()
    with app.app_context():
        link = external_url(endpoint, token=token, **values)
    masked = mask_tokens(f"次のリンクから手続きしてください。\n  {link}\n（有効期限 14日）")
    assert token not in masked
    assert link.replace(token, token[:4] + MASK) in masked
    assert "（有効期限 14日）" in masked


def test_text_without_tokens_is_unchanged(app):
    with app.app_context():
        text = f"{external_url('signature_requests.staff_review', party_id=12)} 契約番号 KEI-R8-0001 /contracts/3"
    assert mask_tokens(text) == text


def test_request_paths_and_referrers_in_logs_are_masked(app, caplog):
    token, _hash = new_token()
    config = Config()
    config.set("accesslog", "-")
    access = Logger(config)
    stream = io.StringIO()
    for handler in access.access_log.handlers:
        handler.setStream(stream)  # type: ignore[attr-defined]
    environ = {"REQUEST_METHOD": "POST", "RAW_URI": f"/s/{token}/complete", "PATH_INFO": f"/s/{token}/complete",
               "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
               "HTTP_REFERER": f"https://portal.example.jp/s/{token}/confirm", "HTTP_USER_AGENT": "test"}
    access.access(SimpleNamespace(status="200 OK", sent=12, headers=[]), SimpleNamespace(headers=[]), environ,
                  timedelta(milliseconds=5))
    line = stream.getvalue()
    assert f"POST /s/{token[:4]}{MASK}/complete HTTP/1.1" in line
    assert f"https://portal.example.jp/s/{token[:4]}{MASK}/confirm" in line
    assert token not in line

    with caplog.at_level(logging.ERROR):
        app.logger.error("Exception on %s [%s]", f"/d/{token}/documents/1", "GET")  # Flask's log_exception
    assert f"/d/{token[:4]}{MASK}/documents/1" in caplog.text
    assert token not in caplog.text
