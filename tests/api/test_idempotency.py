"""Idempotency-Key on POST /api/v1/contracts: a retried create returns the first contract, never a second."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

from sqlalchemy import func, select

from portal.api.models import IdempotencyKey
from portal.contracts.models import Contract
from tests.api.helpers import assert_problem, bearer, metadata, multipart, token_for
from tests.pdfs import make_pdf
from tests.services.live import LiveServer


def _contracts(world) -> int:
    world.refresh()
    return world.session.scalar(select(func.count()).select_from(Contract))


def _create(client, token, meta, *files, key=None):
    headers = bearer(token, **({"Idempotency-Key": key} if key else {}))
    return client.post("/api/v1/contracts", data=multipart(meta, *files), headers=headers,
                       content_type="multipart/form-data")


def test_a_retry_with_the_same_key_and_body_returns_the_first_contract(app, client, world):
    token = token_for(app, world.staff.email)
    pdf = make_pdf("one")
    first = _create(client, token, metadata(world), pdf, key="order-2026-0001")
    again = _create(client, token, metadata(world), pdf, key="order-2026-0001")
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _contracts(world) == 1
    other_key = _create(client, token, metadata(world), pdf, key="order-2026-0002")
    assert other_key.get_json()["id"] != first.get_json()["id"]
    without_key = _create(client, token, metadata(world), pdf)
    assert without_key.status_code == 201
    assert _contracts(world) == 3


def test_the_same_key_with_another_body_is_refused(app, client, world):
    token = token_for(app, world.staff.email)
    assert _create(client, token, metadata(world), make_pdf("one"), key="k-1").status_code == 201
    changed_amount = _create(client, token, metadata(world, amount=660000), make_pdf("one"), key="k-1")
    assert_problem(changed_amount, 422, "idempotency_key_reused")
    changed_file = _create(client, token, metadata(world), make_pdf("two"), key="k-1")
    assert_problem(changed_file, 422, "idempotency_key_reused")
    assert _contracts(world) == 1


def test_keys_are_per_token(app, client, world):
    first, second = token_for(app, world.staff.email), token_for(app, world.staff.email)
    a = _create(client, first, metadata(world), make_pdf(), key="same")
    b = _create(client, second, metadata(world), make_pdf(), key="same")
    assert a.get_json()["id"] != b.get_json()["id"]
    world.refresh()
    assert world.session.scalar(select(func.count()).select_from(IdempotencyKey)) == 2


def test_a_refused_create_does_not_use_up_the_key(app, client, world):
    token = token_for(app, world.staff.email)
    refused = _create(client, token, metadata(world, auto_renewal=True, term_end=None), make_pdf(), key="k-2")
    assert refused.status_code == 422
    fixed = _create(client, token, metadata(world), make_pdf(), key="k-2")
    assert fixed.status_code == 201
    assert _contracts(world) == 1


def test_a_malformed_key_is_400(app, client, world):
    token = token_for(app, world.staff.email)
    for key in ("has space", "x" * 256, "日本語キー"):
        headers = bearer(token, **{"Idempotency-Key": key})
        response = client.post("/api/v1/contracts", json=metadata(world), headers=headers)
        assert_problem(response, 400, "invalid_idempotency_key")
    assert _contracts(world) == 0


def test_concurrent_creates_with_one_key_make_one_contract(app, world):
    token = token_for(app, world.staff.email)
    body = json.dumps(metadata(world)).encode()
    answers: list[tuple[int, dict]] = []
    with LiveServer(app) as server:
        base = server.url
        barrier = threading.Barrier(6)

        def create() -> None:
            request = urllib.request.Request(f"{base}/api/v1/contracts", data=body, method="POST", headers=bearer(
                token, **{"Idempotency-Key": "concurrent-1", "Content-Type": "application/json"}))
            barrier.wait()
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    answers.append((response.status, json.loads(response.read())))
            except urllib.error.HTTPError as exc:
                answers.append((exc.code, json.loads(exc.read())))

        threads = [threading.Thread(target=create) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=90)
    assert server.errors == []
    assert len(answers) == 6
    assert {status for status, _ in answers} == {201}, answers
    assert len({body["id"] for _, body in answers}) == 1
    assert _contracts(world) == 1


def test_keys_older_than_the_setting_are_purged_by_the_periodic_job(app, client, world):
    from datetime import timedelta

    from portal import clock
    from portal.api.idempotency import purge_expired

    token = token_for(app, world.staff.email)
    assert _create(client, token, metadata(world), make_pdf(), key="old").status_code == 201
    with app.app_context():
        later = clock.now() + timedelta(hours=app.config["API_IDEMPOTENCY_KEY_HOURS"] + 1)
        world.refresh()
        assert purge_expired(world.session, now=later, keep_hours=app.config["API_IDEMPOTENCY_KEY_HOURS"]) == 1
        world.session.commit()
    assert "api-idempotency-keys" in app.extensions["portal.jobs"]
    again = _create(client, token, metadata(world), make_pdf(), key="old")
    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers
    assert _contracts(world) == 2
