"""A database failure in the middle of a request: the error page itself renders (menu included), says in
Japanese what happened and that nothing was changed, and nothing of the failed request is kept."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import func, select

from portal import clock
from portal.auth.models import Department
from portal.db import db
from tests.factories import login_as, make_department, make_staff


def _failing_route(app: Flask) -> None:
    def fails_mid_request() -> str:
        db().add(Department(code="KEI", name="重複する所属", created_at=clock.now()))
        db().add(Department(code="KEI", name="重複する所属", created_at=clock.now()))
        db().flush()  # IntegrityError: the code is unique
        return "not reached"

    app.add_url_rule("/contracts/_test_db_failure", view_func=fails_mid_request)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # serve the 500 page as in production, not raise into the test


def test_database_failure_mid_request_renders_a_japanese_error_page(app, session):
    _failing_route(app)
    user = make_staff(session, department=make_department(session, code="SOMU"))
    client = app.test_client()
    login_as(client, user)
    before = session.scalar(select(func.count()).select_from(Department))

    response = client.get("/contracts/_test_db_failure")

    assert response.status_code == 500
    html = response.get_data(as_text=True)
    assert "データベース" in html
    assert "何も変更されていません" in html
    assert user.name in html  # the menu rendered, with the logged-in user
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Department)) == before
    # The next request of the same person works.
    assert client.get("/").status_code == 200
