from __future__ import annotations

from portal.jobs import register_job, run_due_jobs


def test_due_jobs_run_once_per_interval_and_a_failure_does_not_stop_the_others(app):
    calls: list[str] = []

    def broken(session):
        raise RuntimeError("boom")

    register_job(app, "broken", broken, every_seconds=60)
    register_job(app, "counting", lambda session: calls.append("ran"), every_seconds=60)
    now = [1000.0]
    with app.app_context():
        ran = run_due_jobs(monotonic=lambda: now[0])
        assert "counting" in ran
        assert "broken" not in ran
        assert run_due_jobs(monotonic=lambda: now[0] + 30) == []
        now[0] += 61
        assert "counting" in run_due_jobs(monotonic=lambda: now[0])
    assert calls == ["ran", "ran"]


def test_worker_once_runs_the_contract_deadlines(app):
    result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "定期処理 contract-deadlines を実行しました" in result.output
