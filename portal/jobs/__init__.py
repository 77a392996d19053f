"""Background work that runs once across every process.

- register_job(app, name, run, every_seconds): a periodic job, once per period in some worker
  (lease row in job_leases).
- register_handler(app, kind, run, ...) and enqueue(session, kind, key, payload, now=...): one-off
  jobs (table queued_jobs), claimed by one worker, retried with backoff, heartbeat while running.
- register_task(app, name, task): called on every round of the worker (mail delivery).
- run_round(app): one round of all of them (`flask --app app worker --once`).
"""

from portal.jobs.periodic import register_job, run_due_jobs
from portal.jobs.queue import RetryLater, enqueue, register_handler, run_queued_jobs
from portal.jobs.worker import register_task, run_round

__all__ = ["RetryLater", "enqueue", "register_handler", "register_job", "register_task", "run_due_jobs",
           "run_queued_jobs", "run_round"]
