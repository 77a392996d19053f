"""gunicorn settings for `make run` and the container: threads per process, the worker thread per process.

Environment: PORTAL_BIND (127.0.0.1:5000), PORTAL_WEB_PROCESSES (2), PORTAL_WEB_THREADS (8).
SQLite is fine with several processes: write transactions take the write lock when they begin
(portal/db.py) and background jobs take leases, so nothing runs twice.
"""

import os

bind = os.environ.get("PORTAL_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("PORTAL_WEB_PROCESSES", "2"))
threads = int(os.environ.get("PORTAL_WEB_THREADS", "8"))
worker_class = "gthread"
timeout = 120
graceful_timeout = 30
accesslog = "-"


def post_worker_init(worker):  # noqa: ANN001, ANN201 (gunicorn's hook signature)
    # The portal starts its background worker thread when the app is created in the process;
    # with preload_app the app was created before the fork, and threads do not survive one.
    from portal.jobs.worker import start

    start(worker.wsgi)
