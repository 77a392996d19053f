"""Periodic jobs run once per period, queued jobs once, a failing job does not stop the others."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from portal import clock
from portal.jobs import enqueue, register_handler, register_job, run_due_jobs, run_queued_jobs
from portal.jobs.models import JobLease, QueuedJob, QueuedJobStatus
from tests.conftest import reread

T0 = datetime(2026, 6, 1, 3, 0, 10, tzinfo=UTC)


def test_due_jobs_run_once_per_period_and_a_failure_does_not_stop_the_others(app, session):
    calls: list[str] = []

    def broken(session):
        raise RuntimeError("boom")

    register_job(app, "broken", broken, every_seconds=60)
    register_job(app, "counting", lambda session: calls.append("ran"), every_seconds=60)
    with app.app_context():
        ran = run_due_jobs(now=T0)
        assert "counting" in ran
        assert "broken" not in ran
        assert "counting" not in run_due_jobs(now=T0 + timedelta(seconds=30))  # same minute: already ran
        assert "counting" in run_due_jobs(now=T0 + timedelta(seconds=61))
    assert calls == ["ran", "ran"]
    lease = reread(session).get(JobLease, "broken")
    assert lease is not None
    assert "RuntimeError: boom" in lease.last_error
    assert reread(session).get(JobLease, "counting").holder == ""


def test_a_lease_held_by_another_process_is_respected_until_it_runs_out(app, session):
    calls: list[str] = []
    register_job(app, "held", lambda session: calls.append("ran"), every_seconds=60)
    session.add(JobLease(name="held", next_run_at=T0, holder="other-host:1:1", held_until=T0 + timedelta(minutes=5),
                         last_error="", runs=0))
    session.commit()
    with app.app_context():
        assert "held" not in run_due_jobs(now=T0)
        assert "held" in run_due_jobs(now=T0 + timedelta(minutes=6))  # the other holder died
    assert calls == ["ran"]


def test_worker_once_runs_the_contract_deadlines(app):
    result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "定期処理 contract-deadlines を実行しました" in result.output


def test_a_queued_job_runs_once_and_enqueueing_it_twice_is_one_job(app, session):
    calls: list[dict] = []
    register_handler(app, "test.echo", lambda s, job: calls.append(job.payload))
    with app.app_context():
        enqueue(session, "test.echo", 7, {"n": 1}, now=clock.now())
        enqueue(session, "test.echo", 7, {"n": 2}, now=clock.now())
        session.commit()
        assert run_queued_jobs() == 1
        assert run_queued_jobs() == 0
    assert calls == [{"n": 1}]
    job = reread(session).scalar(select(QueuedJob))
    assert (job.status, job.attempts) == (QueuedJobStatus.DONE, 1)


def test_a_failing_job_is_retried_later_and_gives_up_after_max_attempts(app, session):
    given_up: list[str] = []

    def flaky(s, job):
        raise RuntimeError("TSA down")

    register_handler(app, "test.flaky", flaky, max_attempts=2, retry_base_seconds=60,
                     on_give_up=lambda s, job: given_up.append(job.last_error))
    with app.app_context():
        enqueue(session, "test.flaky", 1, now=clock.now())
        session.commit()
        assert run_queued_jobs() == 1
        job = reread(session).scalar(select(QueuedJob))
        assert job.status is QueuedJobStatus.PENDING
        assert "TSA down" in job.last_error
        assert run_queued_jobs() == 0  # not before its retry time
        clock.freeze(clock.now() + timedelta(minutes=2))
        assert run_queued_jobs() == 1
    job = reread(session).scalar(select(QueuedJob))
    assert job.status is QueuedJobStatus.FAILED
    assert len(given_up) == 1
    assert "TSA down" in given_up[0]


def test_a_job_whose_worker_stopped_is_taken_over(app, session):
    calls: list[int] = []
    register_handler(app, "test.resume", lambda s, job: calls.append(job.attempts))
    now = clock.now()
    session.add(QueuedJob(kind="test.resume", key="1", payload={}, status=QueuedJobStatus.RUNNING, attempts=1,
                          run_after=now, claimed_by="dead-host:1:1", heartbeat_at=now - timedelta(seconds=30),
                          last_error="", created_at=now))
    session.commit()
    with app.app_context():
        assert run_queued_jobs() == 0  # its heartbeat is recent enough
        app.config["JOB_STALE_SECONDS"] = 10
        assert run_queued_jobs() == 1
    assert calls == [2]
    assert reread(session).scalar(select(QueuedJob)).status is QueuedJobStatus.DONE
