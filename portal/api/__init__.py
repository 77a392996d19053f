"""The JSON API /api/v1 for the agency's other systems: bearer tokens, problem+json errors, OpenAPI."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def init_app(app: Flask) -> None:
    from portal import clock
    from portal.api import problems, views  # noqa: F401  (routes register on the blueprint)
    from portal.api.idempotency import purge_expired
    from portal.errors import register_error_renderer
    from portal.extensions import csrf
    from portal.jobs import register_job

    app.register_blueprint(bp)
    csrf.exempt(bp)  # bearer tokens, no cookies: CSRF does not apply
    register_error_renderer(app, "/api/", problems.render)
    hours = int(app.config["API_IDEMPOTENCY_KEY_HOURS"])
    register_job(app, "api-idempotency-keys",
                 lambda session: purge_expired(session, now=clock.now(), keep_hours=hours), every_seconds=3600)
