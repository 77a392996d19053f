"""取引先台帳 (the counterparty registry, for staff): each 取引先 with its 契約締結権限者 over time, the
利用申出書 that registered them, its contracts, and 「電子契約を希望しない」.

Its own package because it reads counterparties, usage_requests and contracts, which import each other
in that order; none of them may import this one.
"""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("registry", __name__, template_folder="templates", url_prefix="/counterparties")


def init_app(app: Flask) -> None:
    from portal.registry import views  # noqa: F401 - registers the routes on bp

    app.register_blueprint(bp)
