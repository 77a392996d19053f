"""Where staff may connect from: the networks (CIDR) allowed for the staff login, staff and admin pages
and the JSON API. Vendor pages (signing links, downloads, /apply, /verify, help) stay open to anyone.
"""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("access", __name__, template_folder="templates", url_prefix="/admin")


def init_app(app: Flask) -> None:
    from portal.access import views

    app.register_blueprint(bp)
    app.before_request(views.refuse_staff_requests_from_outside)
