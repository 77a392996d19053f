"""gunicorn settings: `gunicorn -c python:portal.gunicorn_conf 'portal:create_app()'` (gunicorn.conf.py in a
source checkout and the container is this module).

Read from the environment like the portal's own settings (docs/settings.md): PORTAL_BIND, PORTAL_WEB_PROCESSES,
PORTAL_WEB_THREADS, PORTAL_FORWARDED_ALLOW_IPS, PORTAL_ACCESS_LOG; defaults in portal.config.DEFAULTS.
Every log line, gunicorn's included, is one JSON object on standard output (portal/logging_setup.py).
SQLite is fine with several processes: write transactions take the write lock when they begin
(portal/db.py) and background jobs take leases, so nothing runs twice.

With PORTAL_WORKER_PROCESS (the default) the master also starts the background worker as one
separate process at nice PORTAL_WORKER_NICE (portal/jobs/process.py) and restarts it when it dies;
the web processes then run no worker thread, so background work never takes the CPU from a request.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from portal.config import DEFAULTS
from portal.jobs.process import IDLE_FILE_ENV


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


class _WorkerProcess:
    """The background worker process the master keeps running (started again a second after it dies).

    Started with posix_spawn, not subprocess: Popen waits on a pipe for the exec, and a web process
    the master forks meanwhile keeps that pipe open, so Popen would never return. Its exit status
    cannot tell why it ended either (the master reaps every child on SIGCHLD); the process says
    "nothing to run here" (a test app, OUTBOX_WORKER off) by creating the file IDLE_FILE_ENV names.
    """

    def __init__(self) -> None:
        self.pid: int | None = None
        self.stopping = threading.Event()

    def supervise(self, app_uri: str, idle_file: Path, log: Any) -> None:
        while not self.stopping.is_set():
            idle_file.unlink(missing_ok=True)
            try:
                self.pid = os.posix_spawn(sys.executable, [sys.executable, "-m", "portal.jobs.process", app_uri],
                                          {**os.environ, IDLE_FILE_ENV: str(idle_file)})
                code = _wait(self.pid)
            except OSError:
                log.exception("background worker process could not be started")
                code = None
            if idle_file.exists() or self.stopping.is_set():
                return
            log.warning("background worker process exited with %s; starting it again", code)
            self.stopping.wait(1)

    def stop(self) -> None:
        self.stopping.set()
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + graceful_timeout
            while _alive(self.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(self.pid):
                os.kill(self.pid, signal.SIGKILL)


def _wait(pid: int) -> int | None:
    """The exit status, or None when gunicorn's master reaped the process first."""
    try:
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    except ChildProcessError:
        return None


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == 0


_worker_process = _WorkerProcess()


def _separate_worker() -> bool:
    return bool(setting("WORKER_PROCESS")) and bool(setting("OUTBOX_WORKER"))


def on_starting(server: Any) -> None:
    if _separate_worker():  # read by the web processes and the worker process they fork from here
        os.environ["PORTAL_WORKER_IN_WEB"] = "false"
        os.environ["PORTAL_WORKER_WAKE_SOCKET"] = str(Path(tempfile.mkdtemp(prefix="keiyaku-worker-")) / "wake")


def when_ready(server: Any) -> None:
    if os.environ.get("PORTAL_WORKER_WAKE_SOCKET"):
        idle_file = Path(os.environ["PORTAL_WORKER_WAKE_SOCKET"]).with_name("idle")
        threading.Thread(target=_worker_process.supervise, args=(server.app.app_uri, idle_file, server.log),
                         name="portal-worker-supervisor", daemon=True).start()


def on_exit(server: Any) -> None:
    _worker_process.stop()
    socket_path = os.environ.get("PORTAL_WORKER_WAKE_SOCKET")
    if socket_path:
        Path(socket_path).unlink(missing_ok=True)
        Path(socket_path).with_name("idle").unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            Path(socket_path).parent.rmdir()
