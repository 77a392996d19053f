"""create_app() served on a loopback port by a threaded server, and a cookie-keeping HTTP client.

For tests that need real concurrent connections (several requests at the same moment, each with its
own database connection), which Flask's test client does not give.
"""

from __future__ import annotations

import http.cookiejar
import re
import threading
import traceback
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, got_request_exception
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from tests.services.smtp import free_port

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|"X-CSRFToken": "([^"]+)"')


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug logs every request to stderr; tests report the exceptions that matter."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


@dataclass
class LiveServer:
    app: Flask
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"  # "::" listens on both IPv6 and IPv4 (dual stack)
    errors: list[str] = field(default_factory=list)
    _server: BaseWSGIServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        got_request_exception.connect(self._record, self.app)
        self._server = make_server(self.host, self.port, self.app, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="live-server", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        got_request_exception.disconnect(self._record, self.app)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _record(self, sender: Flask, exception: BaseException, **_: Any) -> None:
        self.errors.append("".join(traceback.format_exception(exception)))


@dataclass
class Reply:
    status: int
    text: str
    headers: dict[str, str]


class HttpClient:
    """A browser-like client: keeps cookies, follows redirects, reads the CSRF token off pages."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> Reply:
        return self._send(urllib.request.Request(self.base_url + path))

    def post(self, path: str, data: dict[str, str]) -> Reply:
        body = urllib.parse.urlencode(data).encode()
        return self._send(urllib.request.Request(self.base_url + path, data=body, method="POST"))

    def post_form(self, path: str, data: dict[str, str], page: str | None = None) -> Reply:
        """GET the page (or `page`) for its CSRF token, then POST the form."""
        return self.post(path, {"csrf_token": self.csrf(page or path), **data})

    def login(self, user: Any) -> None:
        """Both steps of the staff login; asserts it worked."""
        from tests.factories import PASSWORD, totp_code

        assert self.post_form("/login", {"email": user.email, "password": PASSWORD}).status == 200
        reply = self.post_form("/login/verify", {"code": totp_code(user)})
        assert reply.status == 200, reply.text

    def csrf(self, page: str) -> str:
        reply = self.get(page)
        match = CSRF_RE.search(reply.text)
        assert match, f"no CSRF token on {page} ({reply.status})"
        return match.group(1) or match.group(2)

    def _send(self, request: urllib.request.Request) -> Reply:
        try:
            with self._opener.open(request, timeout=120) as response:
                return Reply(response.status, response.read().decode("utf-8", "replace"), dict(response.headers))
        except urllib.error.HTTPError as error:
            return Reply(error.code, error.read().decode("utf-8", "replace"), dict(error.headers))
