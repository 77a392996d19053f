"""Signer-facing pages (/s/<token>): read the documents, 「完了する」, 「署名手続きを完了する」, decline."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("signature_requests", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/signing-pages")


def init_app(app: Flask) -> None:
    from portal.signature_requests import views  # noqa: F401

    app.register_blueprint(bp)
