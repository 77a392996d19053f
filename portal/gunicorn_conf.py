"""gunicorn settings: `gunicorn -c python:portal.gunicorn_conf 'portal:create_app()'` (gunicorn.conf.py in a
source checkout and the container is this module).

Read from the environment like the portal's own settings (docs/settings.md): PORTAL_BIND, PORTAL_WEB_PROCESSES,
PORTAL_WEB_THREADS, PORTAL_FORWARDED_ALLOW_IPS, PORTAL_ACCESS_LOG; defaults in portal.config.DEFAULTS.
Every log line, gunicorn's included, is one JSON object on standard output (portal/logging_setup.py).
SQLite is fine with several processes: write transactions take the write lock when they begin
(portal/db.py) and background jobs take leases, so nothing runs twice.
"""

from __future__ import annotations

import json
import os
from typing import Any

from portal.config import DEFAULTS


def setting(name: str) -> Any:
    """PORTAL_<name> parsed as JSON when it is JSON (as Flask reads PORTAL_* variables), else the default."""
    raw = os.environ.get(f"PORTAL_{name}")
    if raw is None:
        return DEFAULTS[name]
    try:
        return json.loads(raw)
    except ValueError:
        return raw


bind = str(setting("BIND"))
workers = int(setting("WEB_PROCESSES"))
threads = int(setting("WEB_THREADS"))
worker_class = "gthread"
timeout = 120
graceful_timeout = 30
forwarded_allow_ips = str(setting("FORWARDED_ALLOW_IPS"))
_access_log = str(setting("ACCESS_LOG") or "")
accesslog = _access_log or None

_json = {"formatter": "json"}
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "portal.logging_setup.JsonFormatter"}},
    "handlers": {
        "stdout": {"class": "portal.logging_setup.StdoutHandler", **_json},
        **({"access_file": {"class": "logging.FileHandler", "filename": _access_log, **_json}}
           if _access_log not in ("", "-") else {}),
    },
    "root": {"level": "WARNING", "handlers": ["stdout"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
        # With a logging configuration gunicorn always writes access lines; below INFO they are dropped.
        "gunicorn.access": {"level": "INFO" if _access_log else "WARNING", "propagate": _access_log == "-",
                            "handlers": ["access_file"] if _access_log not in ("", "-") else []},
    },
}


def post_worker_init(worker: Any) -> None:
    # The portal starts its background worker thread when the app is created in the process;
    # with preload_app the app was created before the fork, and threads do not survive one.
    from portal.jobs.worker import start

    start(worker.wsgi)
