"""One URL, two renderings: the full page, or only its partial for htmx requests."""

from __future__ import annotations

from typing import Any

from flask import Response, make_response, render_template, request


def render_page_or_partial(page: str, partial: str, status: int = 200, **context: Any) -> Response:
    template = partial if getattr(request, "htmx", False) else page
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response


def hx_redirect(url: str) -> Response:
    """Redirect that works for htmx (HX-Redirect) and for plain form posts (303)."""
    if getattr(request, "htmx", False):
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    response = make_response("", 303)
    response.headers["Location"] = url
    return response
