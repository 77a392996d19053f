"""One URL, two renderings: the full page, or only its partial for htmx requests."""

from __future__ import annotations

from typing import Any

from flask import Response, make_response, render_template, request


def wants_partial() -> bool:
    """True for an htmx request that swaps part of the page.

    Not for a history restore (HX-History-Restore-Request: the back button after htmx's cache
    was evicted): htmx then puts the answer in place of the whole <body>, so it needs the full page.
    """
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request  # type: ignore[union-attr]


def render_page_or_partial(page: str, partial: str, status: int = 200, **context: Any) -> Response:
    template = partial if wants_partial() else page
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    response.vary.add("HX-History-Restore-Request")
    return response


def hx_redirect(url: str) -> Response:
    """Redirect that works for htmx (HX-Redirect) and for plain form posts (303)."""
    if wants_partial():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    response = make_response("", 303)
    response.headers["Location"] = url
    return response
