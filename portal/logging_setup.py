"""Logging, set up once per process: one JSON object per line on standard output, tokens masked.

Lines: one per request (logger portal.request: request id, user or signer, method, path, status, duration),
one per job run (portal.job: kind, id, outcome, duration), and the warnings and errors of the portal and its
libraries. Each line passes through portal.tokens.mask_tokens after it is written out, and request lines
carry the path only (never the query string). Under gunicorn, portal/gunicorn_conf.py installs the same
handler for gunicorn's own lines; create_app() then finds it and adds none.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, Response, g, has_request_context, request

from portal.tokens import mask_tokens

REQUEST_LOG = logging.getLogger("portal.request")
JOB_LOG = logging.getLogger("portal.job")
# An X-Request-ID from the reverse proxy is kept when it looks like one; otherwise the portal makes one.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
_configured = False


class JsonFormatter(logging.Formatter):
    """A record as one JSON line: time (UTC), level, logger, message, the record's `fields`, the request id."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", None) or {})
        if "request_id" not in entry and has_request_context() and "request_id" in g:
            entry["request_id"] = g.request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return mask_tokens(json.dumps(entry, ensure_ascii=False, default=str))


class StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """The process's standard output, also while a tool (a test runner, click's CliRunner) swaps sys.stdout."""

    def __init__(self) -> None:
        super().__init__(sys.__stdout__ or sys.stdout)


def configure(app: Flask) -> None:
    """Set up logging for this process (the first app created decides) and log this app's requests."""
    global _configured
    if not _configured:
        _configured = True
        root = logging.getLogger()
        if not any(isinstance(handler, StdoutHandler) for handler in root.handlers):
            handler = StdoutHandler()
            handler.setFormatter(JsonFormatter())
            root.addHandler(handler)
        logging.getLogger("portal").setLevel(str(app.config["LOG_LEVEL"]).upper())
    app.before_request(_start_request)
    app.after_request(_log_request)


def identify(**fields: int) -> None:
    """Name who acts in the current request's log line when it is no logged-in user (signer_party_id=…)."""
    g.log_identity = {**g.get("log_identity", {}), **fields}


def _start_request() -> None:
    g.request_started = time.perf_counter()
    g.request_cpu_started = time.thread_time()
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


def _log_request(response: Response) -> Response:
    started = g.get("request_started")
    fields: dict[str, Any] = {
        "request_id": g.get("request_id") or uuid.uuid4().hex,
        "method": request.method,
        "path": mask_tokens(request.path),
        "status": response.status_code,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1) if started is not None else None,
    }
    cpu_started = g.get("request_cpu_started")
    if cpu_started is not None:  # the CPU of the thread that served it (not of the PDF signing thread)
        fields["cpu_ms"] = round((time.thread_time() - cpu_started) * 1000, 1)
    fields.update(_identity())
    response.headers["X-Request-ID"] = fields["request_id"]
    REQUEST_LOG.info("%s %s %s", fields["method"], fields["path"], fields["status"], extra={"fields": fields})
    return response


def _identity() -> dict[str, int]:
    """Who made the request, from what the request already loaded (no extra database query)."""
    identity: dict[str, int] = {}
    user = g.get("_login_user")  # flask-login's user, once the request has looked at it
    if user is not None and getattr(user, "is_authenticated", False):
        identity["user_id"] = int(user.id)
    token = g.get("api_token")
    if token is not None:
        identity["user_id"], identity["api_token_id"] = int(token.user_id), int(token.id)
    identity.update(g.get("log_identity", {}))
    return identity


@contextmanager
def job_run(**fields: Any) -> Iterator[dict[str, Any]]:
    """Log one line when the block ends: `fields`, what the block adds to the yielded dict, outcome, duration.

    The outcome is "done" unless the block sets another or raises ("failed").
    """
    entry: dict[str, Any] = {**fields, "outcome": "done"}
    started = time.perf_counter()
    try:
        yield entry
    except BaseException:
        entry["outcome"] = "failed"
        raise
    finally:
        entry["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
        JOB_LOG.info("job %s %s", entry.get("job"), entry["outcome"], extra={"fields": entry})
