"""Mail outbox: rows written in the business transaction, delivered over SMTP after commit."""

from flask import Blueprint

bp = Blueprint("mail", __name__, template_folder="templates", url_prefix="/admin/mail")

from portal.mail import views  # noqa: E402,F401
