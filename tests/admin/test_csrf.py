"""CSRF is enforced on every state-changing route, not only on the forms we remember to test."""

from __future__ import annotations

import re

from portal.auth.models import Role
from tests.factories import login_as, make_staff


def _post_routes(app):
    for rule in app.url_map.iter_rules():
        methods = rule.methods or set()
        if methods & {"POST", "PUT", "PATCH", "DELETE"} and not rule.endpoint.startswith("static"):
            yield rule


def _sample_path(rule) -> str:
    path = rule.rule
    path = re.sub(r"<int:[^>]+>", "1", path)
    path = re.sub(r"<[^>]+>", "x", path)
    return path


def test_every_post_route_refuses_a_missing_csrf_token(app, client, session):
    admin = make_staff(session, role=Role.ADMIN)
    login_as(client, admin)
    csrf = app.extensions["csrf"]
    exempt_blueprints = {bp.name for bp in csrf._exempt_blueprints}
    checked = 0
    for rule in _post_routes(app):
        view = app.view_functions[rule.endpoint]
        # Exempt on purpose: the RFC 3161 endpoint and the bearer-token JSON API (no cookies).
        view_path = f"{view.__module__}.{view.__name__}"
        if view_path in csrf._exempt_views or rule.endpoint.split(".")[0] in exempt_blueprints:
            assert rule.rule.startswith(("/tsa", "/api/")), f"{rule.rule} is exempt from CSRF"
            continue
        response = client.post(_sample_path(rule), data={"anything": "1"})
        assert response.status_code == 400, f"{rule.rule} accepted a POST without CSRF token"
        checked += 1
    assert checked >= 8


def test_csrf_refusal_is_explained_in_japanese(client, session):
    user = make_staff(session)
    response = client.post("/login", data={"email": user.email, "password": "x"})
    assert response.status_code == 400
    assert "ページを再読み込みしてからやり直してください" in response.get_data(as_text=True)
