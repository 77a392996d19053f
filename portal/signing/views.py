"""HTTP endpoints: public verification page, RFC 3161 TSA, certificates and CRL, admin status."""

from __future__ import annotations

from typing import BinaryIO, cast

from flask import Response, abort, current_app, render_template, request
from flask.typing import ResponseReturnValue

from portal import clock
from portal.auth.models import Role
from portal.extensions import csrf, limiter
from portal.htmx import render_page_or_partial
from portal.security import role_required

from . import bp, pki, service
from .context import SigningContext
from .errors import InvalidPdf
from .pades import verify
from .tsa import LocalTsa, respond_to_http_request
from .verification import VerificationReport, panel_lines, to_jst

TSA_QUERY = "application/timestamp-query"
MAX_TSA_QUERY_BYTES = 64 * 1024


def _context() -> SigningContext:
    return service.configure(current_app.config)


@bp.get("/verify")
def verify_page() -> ResponseReturnValue:
    return render_template("signing/verify.html", report=None, error=None, filename=None)


def _render_report(
    status: int, *, error: str | None = None, report: VerificationReport | None = None, filename: str | None = None
) -> Response:
    return render_page_or_partial(
        "signing/verify.html",
        "signing/_verify_report.html",
        status,
        error=error,
        report=report,
        filename=filename,
        panel_lines=panel_lines,
        to_jst=to_jst,
    )


@bp.post("/verify")
@limiter.limit("10/minute")
def verify_upload() -> ResponseReturnValue:
    """Verify an uploaded PDF and show the report; the portal keeps nothing of the file."""
    upload = request.files.get("pdf")
    if upload is None or not upload.filename:
        return _render_report(422, error="PDF ファイルを選択してください。")
    try:
        report = verify(cast(BinaryIO, upload.stream), context=_context())
    except InvalidPdf as exc:
        return _render_report(exc.status_code, error=exc.message, filename=upload.filename)
    return _render_report(200, report=report, filename=upload.filename)


@bp.post("/tsa")
@csrf.exempt
@limiter.limit("120/minute")
def tsa() -> ResponseReturnValue:
    """RFC 3161 over HTTP (§3.4) by the built-in TSA."""
    if request.mimetype != TSA_QUERY:
        abort(415)
    if (request.content_length or 0) > MAX_TSA_QUERY_BYTES:
        abort(413)
    authority = _context().tsa
    if not isinstance(authority, LocalTsa):
        # The built-in TSA answers even when signatures use an external one.
        context = _context()
        assert context.pki is not None
        authority = service.builtin_tsa(context.pki)
    reply = respond_to_http_request(authority, request.get_data(cache=False))
    return Response(reply, mimetype="application/timestamp-reply")


@bp.get("/pki/crl/<name>.crl")
def crl(name: str) -> ResponseReturnValue:
    if name != pki.ROOT_NAME:
        abort(404)
    local = _context().pki
    assert local is not None
    response = Response(pki.current_crl(local), mimetype="application/pkix-crl")
    response.cache_control.max_age = 300
    return response


@bp.get("/pki/<name>.crt")
def certificate(name: str) -> ResponseReturnValue:
    local = _context().pki
    assert local is not None
    try:
        der = pki.certificate_der(local, name)
    except KeyError:
        abort(404)
    response = Response(der, mimetype="application/pkix-cert")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.crt"'
    return response


@bp.get("/admin/signing")
@role_required(Role.ADMIN)
def admin_status() -> ResponseReturnValue:
    from portal.db import db

    from .lifecycle import revocation_entries

    status = service.signing_status(current_app.config, _context(), now=clock.now(),
                                    revocations=revocation_entries(db()))
    return render_template("signing/admin.html", status=status)
