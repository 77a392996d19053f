"""Logs under gunicorn (gunicorn.conf.py, as `make run` and the container start it): every line on standard
output is one JSON object; one line per request with its request id, who made it (staff user, signer party,
download link), method, path, status and duration; one per job run; link tokens never appear, in the portal's
lines or in gunicorn's own access lines."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from portal.auth.models import Role
from portal.tokens import MASK, new_token
from tests.conftest import test_config as portal_config
from tests.contracts.fixtures import World, app_config, world  # noqa: F401  (fixtures)
from tests.factories import make_staff
from tests.services.live import GunicornServer, HttpClient


@pytest.fixture
def server(app: Flask, world: World, pki_dir: str) -> Iterator[GunicornServer]:  # noqa: F811
    settings = portal_config(app.config["DATABASE_URL"], app.instance_path, PKI_DIR=pki_dir, TESTING=False,
                             OUTBOX_WORKER=True, OUTBOX_POLL_SECONDS=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_ACCESS_LOG", "-")  # gunicorn's own access lines too
        with GunicornServer(settings, processes=1) as started:
            yield started


def log_lines(server: GunicornServer) -> list[dict[str, Any]]:
    text = server._log_text()
    lines = [line for line in text.splitlines() if line.strip()]
    not_json = [line for line in lines if not _is_json_object(line)]
    assert not not_json, f"log lines that are not one JSON object: {not_json[:3]}"
    return [json.loads(line) for line in lines]


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def requests_to(lines: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == "portal.request" and line["path"] == path]


def test_one_json_line_per_request_and_per_job_and_no_token_anywhere(
        server: GunicornServer, world: World, session: Any) -> None:  # noqa: F811
    contract_id = world.sent_contract()
    signing_path = world.signing_link()
    token = signing_path.removeprefix("/s/")
    unknown, _ = new_token()
    staff = make_staff(session, role=Role.STAFF, email="kiroku@pref.example.jp", name="記録 太郎",
                       department=world.department)

    signer = HttpClient(server.url)
    assert signer.get(signing_path).status == 200
    assert signer.get(f"/s/{unknown}?next=/s/{unknown}").status in (404, 410)
    probe = HttpClient(server.url)
    probe._opener.addheaders = [("X-Request-ID", "lb-probe-0001")]
    assert probe.get("/healthz").headers["X-Request-ID"] == "lb-probe-0001"
    clerk = HttpClient(server.url)
    clerk.login(staff)
    assert clerk.get(f"/contracts/{contract_id}").status == 200

    lines = _wait_for_job_lines(server)
    text = server._log_text()
    for secret in (token, unknown):
        assert secret not in text
        assert secret[:4] + MASK in text

    (signer_line,) = requests_to(lines, f"/s/{token[:4]}{MASK}")
    assert signer_line["method"] == "GET"
    assert signer_line["status"] == 200
    assert signer_line["signer_party_id"] == world.party_ids(contract_id)[0]
    assert "user_id" not in signer_line
    assert re.fullmatch(r"[0-9a-f]{32}", signer_line["request_id"])
    assert isinstance(signer_line["duration_ms"], float)
    assert 0 < signer_line["cpu_ms"] <= signer_line["duration_ms"] + 1
    assert all("?" not in line.get("path", "") for line in lines)  # the query string is never logged

    (health_line,) = requests_to(lines, "/healthz")
    assert health_line["request_id"] == "lb-probe-0001"

    (clerk_line,) = requests_to(lines, f"/contracts/{contract_id}")
    assert (clerk_line["user_id"], clerk_line["status"]) == (staff.id, 200)

    access = [line for line in lines if line["logger"] == "gunicorn.access"]
    assert any(f"/s/{token[:4]}{MASK}" in line["message"] for line in access)
    assert {"time", "level", "logger", "message"} <= lines[0].keys()


def _wait_for_job_lines(server: GunicornServer) -> list[dict[str, Any]]:
    """The worker thread runs the periodic jobs soon after the start."""
    deadline = time.monotonic() + 30
    while True:
        lines = log_lines(server)
        jobs = [line for line in lines if line["logger"] == "portal.job"]
        if jobs or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert jobs, "no job line"
    assert {"job", "kind", "outcome", "duration_ms"} <= jobs[0].keys()
    assert jobs[0]["outcome"] == "done"
    return lines
