"""create_app() served on a loopback port by a threaded server, and a cookie-keeping HTTP client.

For tests that need real concurrent connections (several requests at the same moment, each with its
own database connection), which Flask's test client does not give.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
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


REPO = Path(__file__).resolve().parents[2]
_SERIALIZABLE = (str, int, float, bool, type(None), list, dict)


@dataclass
class GunicornServer:
    """The portal under gunicorn (gunicorn.conf.py: gthread workers) with `config`, in `processes` processes.

    For races between server processes: each process has its own connection pool, so only the
    database serialises them. `errors` holds the tracebacks the processes logged.
    """

    config: dict[str, Any]
    processes: int = 3
    port: int = field(default_factory=free_port)
    _process: subprocess.Popen[bytes] | None = None
    _log: Path | None = None
    _log_file: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> GunicornServer:
        directory = Path(tempfile.mkdtemp(prefix="gunicorn-"))
        settings = {k: v for k, v in self.config.items() if isinstance(v, _SERIALIZABLE)}
        (directory / "config.json").write_text(json.dumps(settings), encoding="utf-8")
        self._log = directory / "gunicorn.log"
        self._log_file = self._log.open("wb")
        env = {**os.environ, "PYTHONPATH": str(REPO), "PORTAL_TEST_APP_CONFIG": str(directory / "config.json"),
               "PORTAL_BIND": f"127.0.0.1:{self.port}", "PORTAL_WEB_PROCESSES": str(self.processes),
               "PORTAL_WEB_THREADS": "8"}
        env.pop("FLASK_RUN_FROM_CLI", None)
        gunicorn = Path(sys.executable).parent / "gunicorn"
        self._process = subprocess.Popen([str(gunicorn), "-c", "gunicorn.conf.py", "tests.services.gunicorn_app:app"],
                                         cwd=REPO, env=env, stdout=self._log_file, stderr=subprocess.STDOUT)
        self._wait_until_serving()
        return self

    def _wait_until_serving(self) -> None:
        probe = HttpClient(self.url)
        deadline = time.monotonic() + 60
        booted = 0
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                break
            booted = self._log_text().count("Booting worker")
            if booted >= self.processes:
                try:
                    probe.get("/login")
                    return
                except OSError:
                    pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"gunicorn did not start ({booted} workers):\n{self._log_text()[-3000:]}")

    def __exit__(self, *_: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)  # quick shutdown: the test has its replies
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def log(self) -> str:
        """What gunicorn and the portal logged so far."""
        return self._log_text()

    @property
    def errors(self) -> list[str]:
        """The tracebacks logged so far."""
        return ["Traceback" + part for part in self._log_text().split("Traceback")[1:]]

    def _log_text(self) -> str:
        return self._log.read_text(encoding="utf-8", errors="replace") if self._log and self._log.exists() else ""


@dataclass
class Reply:
    status: int
    text: str
    headers: dict[str, str]
    content: bytes = b""


class HttpClient:
    """A browser-like client: keeps cookies, follows redirects, reads the CSRF token off pages."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._jar = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self._jar))

    def cookies(self) -> list[http.cookiejar.Cookie]:
        return list(self._jar)

    def copy_cookies_from(self, other: HttpClient) -> None:
        """Present the other client's cookies too, like a cookie copied to another machine."""
        for cookie in other.cookies():
            self._jar.set_cookie(cookie)

    def get(self, path: str) -> Reply:
        return self._send(urllib.request.Request(self.base_url + path))

    def post(self, path: str, data: dict[str, str]) -> Reply:
        body = urllib.parse.urlencode(data).encode()
        return self._send(urllib.request.Request(self.base_url + path, data=body, method="POST"))

    def post_files(self, path: str, data: dict[str, str], files: list[tuple[str, str, bytes]]) -> Reply:
        """POST multipart/form-data: `files` as (field, filename, content)."""
        boundary = uuid.uuid4().hex
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
                 for name, value in data.items()]
        for name, filename, content in files:
            header = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                      f'filename="{filename}"\r\nContent-Type: application/pdf\r\n\r\n')
            parts.append(header.encode() + content + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        request = urllib.request.Request(self.base_url + path, data=body, method="POST",
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        return self._send(request)

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
                content = response.read()
                return Reply(response.status, content.decode("utf-8", "replace"), dict(response.headers), content)
        except urllib.error.HTTPError as error:
            content = error.read()
            return Reply(error.code, content.decode("utf-8", "replace"), dict(error.headers), content)


def at_once(calls: list[Callable[[], Reply]], *, timeout: float = 180) -> list[Reply]:
    """Run the calls in threads released together by a barrier; a thread's exception fails the test."""
    start = threading.Barrier(len(calls))
    replies: list[Reply] = []
    failures: list[str] = []

    def run(call: Callable[[], Reply]) -> None:
        try:
            start.wait()
            replies.append(call())
        except Exception as exc:
            failures.append(repr(exc))

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not failures, failures
    assert len(replies) == len(calls)
    return replies
