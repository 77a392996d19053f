"""JSON API and webhook delivery, timed and printed (never asserted).

    .venv/bin/python bench/api_webhooks.py

- POST /api/v1/contracts (JSON body, with and without Idempotency-Key) and its replay;
- GET /api/v1/contracts over 200 contracts (per_page 50) and GET /api/v1/contracts/{id};
- webhook delivery: 200 events to a receiver on loopback, by one worker and by two at once.
SQLite in a temporary instance, Flask's test client for the API (no network), real HTTP for the webhooks.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portal import clock, create_app, migrate
from portal.db import make_engine
from portal.webhooks import service as webhooks
from tests.api.helpers import bearer, metadata, token_for
from tests.contracts.fixtures import World
from tests.services.webhook_receiver import WebhookReceiver

RUNS = 50
EVENTS = 200


def _timed(samples: list[float], call: Callable[[], object]) -> object:
    start = time.perf_counter()
    result = call()
    samples.append(time.perf_counter() - start)
    return result


def _print(label: str, samples: list[float]) -> None:
    print(f"{label:52} median {statistics.median(samples) * 1000:7.1f} ms   "
          f"min {min(samples) * 1000:7.1f} ms   max {max(samples) * 1000:7.1f} ms   n={len(samples)}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.sqlite3"
        engine = make_engine(url)
        with engine.begin() as connection:
            migrate.upgrade(connection)
        engine.dispose()
        app = create_app({"TESTING": True, "INSTANCE_PATH": f"{tmp}/instance", "DATABASE_URL": url,
                          "SECRET_KEY": "insecure-test-key", "MASTER_KEY": "00" * 31 + "01", "ARGON2_TIME_COST": 1,
                          "ARGON2_MEMORY_KIB": 64, "RATELIMIT_ENABLED": False,
                          "OUTBOX_WORKER": False, "PUBLIC_BASE_URL": "http://localhost"})
        session = app.extensions["portal.session_factory"]()
        session.info["app"] = app
        world = World(app, session)
        client = app.test_client()
        token = token_for(app, world.staff.email)
        body = metadata(world)
        plain: list[float] = []
        keyed: list[float] = []
        replayed: list[float] = []
        listed: list[float] = []
        shown: list[float] = []
        ids = []
        for n in range(RUNS * 4):
            response = _timed(plain, lambda: client.post("/api/v1/contracts", json=body, headers=bearer(token)))
            ids.append(response.get_json()["id"])  # type: ignore[attr-defined]
            if n < RUNS:
                headers = bearer(token, **{"Idempotency-Key": f"bench-{n}"})
                _timed(keyed, lambda: client.post("/api/v1/contracts", json=body, headers=headers))  # noqa: B023
                _timed(replayed, lambda: client.post("/api/v1/contracts", json=body, headers=headers))  # noqa: B023
        for n in range(RUNS):
            _timed(listed, lambda: client.get("/api/v1/contracts?per_page=50", headers=bearer(token)))
            _timed(shown, lambda: client.get(f"/api/v1/contracts/{ids[n]}", headers=bearer(token)))  # noqa: B023
        _print("POST /contracts (JSON, no documents)", plain)
        _print("POST /contracts with Idempotency-Key (first)", keyed)
        _print("POST /contracts with Idempotency-Key (replay)", replayed)
        _print(f"GET /contracts?per_page=50 over {len(ids) + RUNS} contracts", listed)
        _print("GET /contracts/{id} (with events)", shown)

        receiver = WebhookReceiver().start()
        try:
            with app.app_context():
                webhooks.create_endpoint(session, url=receiver.url, events=["contract.completed"], actor=None,
                                         now=clock.now())
                session.commit()
                for workers in (1, 2):
                    for n in range(EVENTS):
                        webhooks.enqueue_event(session, "contract.completed", {"contract": {"number": f"B-{n}"}},
                                               now=clock.now())
                    session.commit()
                    start = time.perf_counter()
                    threads = [threading.Thread(target=_drain, args=(app,)) for _ in range(workers)]
                    for thread in threads:
                        thread.start()
                    for thread in threads:
                        thread.join()
                    elapsed = time.perf_counter() - start
                    print(f"webhooks: {EVENTS} events, {workers} worker(s): {elapsed:6.2f} s  "
                          f"({EVENTS / elapsed:6.1f} deliveries/s), received so far {len(receiver.received)}")
        finally:
            receiver.stop()
        session.close()
        print(json.dumps({"received": len(receiver.received), "expected": 2 * EVENTS}))


def _drain(app) -> None:  # type: ignore[no-untyped-def]
    with app.app_context(), app.extensions["portal.session_factory"]() as worker:
        while webhooks.deliver_due(worker):
            pass


if __name__ == "__main__":
    main()
