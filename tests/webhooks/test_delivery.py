"""Webhook delivery over real HTTP to a receiver on loopback: signed, retried, given up, sent once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.audit.service import RequestInfo
from portal.usage_requests import service as usage_requests
from portal.usage_requests.models import UsageRequestStatus
from portal.webhooks import service
from portal.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEventType
from tests.conftest import reread
from tests.factories import make_department
from tests.services.smtp import free_port
from tests.services.webhook_receiver import WebhookReceiver
from tests.usage_requests.conftest import make_usage_request

PAYLOAD = {"contract": {"id": 7, "number": "KEI-2026-0007", "status": "completed",
                        "documents": [{"n": 1, "filename": "契約書.pdf", "sha256": "ab" * 32}]}}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver().start()
    yield running
    running.stop()


def _endpoint(app: Flask, session: Session, url: str, events: list[str] | None = None) -> tuple[int, str]:
    with app.app_context():
        endpoint, secret = service.create_endpoint(session, url=url, events=events or [e.value for e in
                                                                                       WebhookEventType],
                                                   description="文書管理システム", actor=None, now=clock.now())
        session.commit()
        return endpoint.id, secret


def _enqueue(app: Flask, session: Session, event: str = "contract.completed") -> str:
    with app.app_context():
        row = service.enqueue_event(session, event, PAYLOAD, now=clock.now())
        session.commit()
        assert row is not None
        return row.event_id


def _deliver(app: Flask, now=None) -> int:
    """One pass of the worker, at `now` (the clock frozen there) or the real time."""
    if now is not None:
        clock.freeze(now)
    with app.app_context(), app.extensions["portal.session_factory"]() as worker_session:
        return service.deliver_due(worker_session)


def _deliveries(session: Session) -> list[WebhookDelivery]:
    return list(reread(session).scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_event_is_delivered_signed_and_the_signature_verifies(app, session, receiver):
    _, secret = _endpoint(app, session, receiver.url)
    event_id = _enqueue(app, session)

    assert _deliver(app) == 1

    [got] = receiver.received
    assert got.signature_valid(secret)
    assert not got.signature_valid(secret + "x")
    body = got.json()
    assert body["id"] == event_id
    assert body["type"] == "contract.completed"
    assert body["data"] == PAYLOAD
    assert body["occurred_at"].endswith("+09:00")
    assert got.headers["X-Keiyaku-Event"] == "contract.completed"
    assert got.headers["Content-Type"].startswith("application/json")
    [delivery] = _deliveries(session)
    assert delivery.status is DeliveryStatus.DELIVERED
    assert delivery.attempts == 1
    assert _deliver(app) == 0  # nothing is sent twice
    assert len(receiver.received) == 1


def test_a_receiver_with_the_wrong_secret_rejects_the_signature(app, session, receiver):
    _endpoint(app, session, receiver.url)
    _enqueue(app, session)
    _deliver(app)
    [got] = receiver.received
    assert not got.signature_valid("whsec_another-systems-secret-value")


def test_a_changed_body_or_timestamp_no_longer_verifies(app, session, receiver):
    _, secret = _endpoint(app, session, receiver.url)
    _enqueue(app, session)
    _deliver(app)
    [got] = receiver.received
    tampered = type(got)(dict(got.headers), got.body.replace(b"completed", b"cancelled"))
    replayed = type(got)({**got.headers, "X-Keiyaku-Timestamp": str(int(got.headers["X-Keiyaku-Timestamp"]) + 1)},
                         got.body)
    assert not tampered.signature_valid(secret)
    assert not replayed.signature_valid(secret)


def test_receiver_down_then_up_gets_the_event_exactly_once(app, session):
    port = free_port()
    _, secret = _endpoint(app, session, f"http://127.0.0.1:{port}/hooks")
    event_id = _enqueue(app, session)
    start = clock.now()

    assert _deliver(app, now=start) == 0
    [delivery] = _deliveries(session)
    assert delivery.status is DeliveryStatus.PENDING
    assert delivery.attempts == 1
    assert "Connection" in delivery.last_error or "refused" in delivery.last_error.lower()
    assert delivery.next_attempt_at > start
    assert _deliver(app, now=start + timedelta(seconds=5)) == 0  # backoff: not yet due
    assert _deliveries(session)[0].attempts == 1

    receiver = WebhookReceiver(port=port).start()
    try:
        assert _deliver(app, now=start + timedelta(minutes=2)) == 1
        assert _deliver(app, now=start + timedelta(minutes=30)) == 0
    finally:
        receiver.stop()
    [got] = receiver.received
    assert got.json()["id"] == event_id
    assert got.signature_valid(secret)
    [delivery] = _deliveries(session)
    assert delivery.status is DeliveryStatus.DELIVERED
    assert delivery.attempts == 2


def test_an_error_answer_is_retried_with_growing_delays_then_given_up(app, session):
    app.config["WEBHOOK_GIVE_UP_HOURS"] = 2
    receiver = WebhookReceiver(status=500).start()
    try:
        _endpoint(app, session, receiver.url)
        _enqueue(app, session)
        start = clock.now()
        delays, moment = [], start
        while True:
            _deliver(app, now=moment)
            [delivery] = _deliveries(session)
            if delivery.status is not DeliveryStatus.PENDING:
                break
            delays.append((delivery.next_attempt_at - moment).total_seconds())
            moment = delivery.next_attempt_at
            assert len(delays) < 20
    finally:
        receiver.stop()
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.last_status_code == 500
    assert delivery.last_error == "HTTP 500"
    assert delays[:4] == pytest.approx([30, 60, 120, 240], abs=2)
    assert max(delays) <= app.config["WEBHOOK_RETRY_MAX_SECONDS"] + 2
    assert timedelta(hours=1) < moment - start <= timedelta(hours=2)
    assert len(receiver.received) == delivery.attempts


def test_two_workers_delivering_at_once_send_each_event_once(app, session):
    receiver = WebhookReceiver(delay=0.2).start()  # a slow receiver keeps the first claim open
    try:
        _endpoint(app, session, receiver.url)
        for _ in range(5):
            _enqueue(app, session)
        barrier = threading.Barrier(4)
        results: list[int] = []

        def worker() -> None:
            barrier.wait()
            results.append(_deliver(app))

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        receiver.stop()
    assert sum(results) == 5
    assert sorted(r.json()["id"] for r in receiver.received) == sorted(
        d.event.event_id for d in _deliveries(session))
    assert len(receiver.received) == 5
    assert all(d.status is DeliveryStatus.DELIVERED and d.attempts == 1 for d in _deliveries(session))


def test_only_subscribed_active_endpoints_get_an_event(app, session, receiver):
    _endpoint(app, session, receiver.url, ["contract.signed"])
    with app.app_context():
        assert service.enqueue_event(session, "contract.completed", PAYLOAD, now=clock.now()) is None
        session.commit()
    assert _deliveries(session) == []
    _enqueue(app, session, "contract.signed")
    assert len(_deliveries(session)) == 1


def test_a_redirect_is_a_failed_attempt_not_followed(app, session):
    receiver = WebhookReceiver(status=302).start()
    try:
        _endpoint(app, session, receiver.url)
        _enqueue(app, session)
        assert _deliver(app) == 0
    finally:
        receiver.stop()
    [delivery] = _deliveries(session)
    assert delivery.status is DeliveryStatus.PENDING
    assert delivery.last_status_code == 302


def test_usage_request_confirmation_writes_its_event_in_the_same_transaction(app, session, receiver):
    _endpoint(app, session, receiver.url, ["usage_request.confirmed"])
    department = make_department(session)
    session.commit()
    usage_request = make_usage_request(session, department, status=UsageRequestStatus.AWAITING_EMAIL)
    with app.app_context():
        assert usage_requests.confirm(session, usage_request, now=clock.now(), request=RequestInfo())
        session.rollback()  # the change is not committed: neither is its event
    assert _deliveries(session) == []
    usage_request = make_usage_request(session, department, status=UsageRequestStatus.AWAITING_EMAIL)
    with app.app_context():
        assert usage_requests.confirm(session, usage_request, now=clock.now(), request=RequestInfo())
        session.commit()
    assert _deliver(app) == 1
    [got] = receiver.received
    data = got.json()["data"]["usage_request"]
    assert data["receipt_number"] == usage_request.receipt_number
    assert data["status"] == "pending"
    assert "token" not in got.body.decode()
    assert "http" not in got.body.decode()
