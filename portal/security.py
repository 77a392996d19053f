"""Access rules: roles per view, security headers on every response."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, Response, abort
from flask_login import current_user

from portal.audit.service import RequestInfo, client_ip, request_info

__all__ = ["RequestInfo", "client_ip", "request_info"]  # where views and services have always found them

F = TypeVar("F", bound=Callable[..., Any])


def role_required(*roles: str) -> Callable[[F], F]:
    """Allow only logged-in, active staff with one of the roles (admin always passes)."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            from portal.extensions import login_manager

            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role != "admin" and current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
PERMISSIONS_POLICY = ("camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), bluetooth=(), "
                      "display-capture=(), browsing-topics=()")
# Responses a shared or public cache may keep: static files and the published CA certificates and CRLs.
CACHEABLE_ENDPOINTS = ("static", "signing.certificate", "signing.crl")


def add_security_headers(response: Response) -> Response:
    from flask import current_app, request

    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    endpoint = request.endpoint or ""
    if "Cache-Control" not in headers and not (endpoint == "static" or endpoint.endswith(".static")
                                               or endpoint in CACHEABLE_ENDPOINTS):
        # Pages, PDFs, CSV and ZIP files carry contracts and personal data: never kept by a browser or proxy.
        headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    app.after_request(add_security_headers)


