"""Error pages say in words what happened and what to do next — as a page and as an htmx partial —
and the status code is only the small print (for a call to the help desk), never the headline."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from portal.auth.models import Role
from portal.errors import ADVICE, MESSAGES
from tests.factories import login_as, make_staff

HTMX = {"HX-Request": "true"}


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"RATELIMIT_ENABLED": True, "MAX_CONTENT_LENGTH": 4096, "CONTACT_PHONE": "086-224-2111"}


def _forbidden(app: Flask, client: FlaskClient, session: Session, headers: dict[str, str]) -> Any:
    login_as(client, make_staff(session, role=Role.STAFF))
    return client.get("/admin/users", headers=headers)


def _not_found(app: Flask, client: FlaskClient, session: Session, headers: dict[str, str]) -> Any:
    return client.get("/no/such/page", headers=headers)


def _method_not_allowed(app: Flask, client: FlaskClient, session: Session, headers: dict[str, str]) -> Any:
    return client.put("/help", headers=headers)


def _too_large(app: Flask, client: FlaskClient, session: Session, headers: dict[str, str]) -> Any:
    return client.post("/verify", data=b"x" * 10_000, content_type="application/x-www-form-urlencoded",
                       headers=headers)


def _too_many(app: Flask, client: FlaskClient, session: Session, headers: dict[str, str]) -> Any:
    for _ in range(60):  # /d/<token> allows 60 a minute
        assert client.get("/d/" + "q" * 43).status_code == 404
    return client.get("/d/" + "q" * 43, headers=headers)


def _server_error(app: Flask, client: FlaskClient, session: Session, headers: dict[str, str]) -> Any:
    def fails() -> str:
        raise RuntimeError("boom")

    app.add_url_rule("/_test_fails", view_func=fails)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return client.get("/_test_fails", headers=headers)


TRIGGERS: dict[int, Callable[..., Any]] = {
    403: _forbidden, 404: _not_found, 405: _method_not_allowed, 413: _too_large, 429: _too_many, 500: _server_error,
}


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize("status", sorted(TRIGGERS))
def test_the_error_page_says_what_happened_and_what_to_do(app: Flask, session: Session, status: int) -> None:
    response = TRIGGERS[status](app, app.test_client(), session, {})

    assert response.status_code == status
    html = response.get_data(as_text=True)
    [headline] = re.findall(r"<h1>(.*?)</h1>", html, re.S)
    assert not re.search(r"\d{3}", headline), headline  # words, not a code
    assert not re.search(r"\d{3}", re.search(r"<title>(.*?)</title>", html, re.S).group(1))  # type: ignore[union-attr]
    if status != 500:
        assert headline.strip() == MESSAGES[status]
    else:
        assert "システムエラー" in headline
    assert ADVICE[status] in _text(html)
    assert f"（{status}）" not in html
    assert f"エラーコード {status}" in html  # the small print, for a call


@pytest.mark.parametrize("status", sorted(TRIGGERS))
def test_the_htmx_partial_says_the_same_in_words(app: Flask, session: Session, status: int) -> None:
    response = TRIGGERS[status](app, app.test_client(), session, HTMX)

    assert response.status_code == status
    html = response.get_data(as_text=True)
    assert "<html" not in html
    assert "data-error-message" in html
    text = _text(html)
    assert not re.search(r"\d{3}", text.split("。")[0]), text
    assert ADVICE[status] in text
    assert "HX-Request" in response.headers.get("Vary", "")


def test_a_404_names_the_general_contact_when_no_department_is_known(app: Flask) -> None:
    html = app.test_client().get("/no/such/page").get_data(as_text=True)

    assert "新しいリンクが送られた可能性があります" in html
    assert "086-224-2111" in html
