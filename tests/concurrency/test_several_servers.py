"""Several servers as a prefecture runs them: two gunicorn servers and one worker process on one PostgreSQL,
documents in an S3 store (moto's server on loopback), rate limits in Redis (redis-server on loopback).

`flask init` makes the secrets and the PKI once; server A reads them from the instance folder, server B
from files given by setting, with an instance folder of its own (so nothing is shared through local
disk). Vendors sign through both servers at once; the worker and both servers' worker threads compete
for mails, completion jobs and webhooks. Every contract completes once, every mail and webhook goes once,
a document uploaded through one server is shown by the other, and a rate limit counts across both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from portal import clock, create_app
from portal.audit.models import AuditEvent
from portal.audit.service import RequestInfo
from portal.auth.models import Role
from portal.contracts import service as contracts
from portal.contracts.models import AUTH_PASSWORD, AUTH_TOTP, Contract, ContractStatus, PageImage, SignatureRequest
from portal.mail.models import OutboxMessage, OutboxStatus
from portal.signature_requests import service as signing
from portal.webhooks import service as webhooks
from portal.webhooks.models import DeliveryStatus, WebhookDelivery
from tests.conftest import reread, throwaway_postgres
from tests.conftest import test_config as settings_for
from tests.contracts.fixtures import LINK_RE
from tests.factories import make_contract, make_department, make_staff
from tests.pdfs import make_pdf
from tests.services.live import REPO, GunicornServer, HttpClient, Reply
from tests.services.webhook_receiver import WebhookReceiver

VENDORS = 6
APPLY_LIMIT = 3

pytestmark = pytest.mark.postgres


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with throwaway_postgres("keiyaku_servers") as url:
        yield url


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver().start()
    yield running
    running.stop()


def _run_init(settings: dict[str, Any], directory: Path) -> str:
    """`flask init` once, as the operator's one-shot init service would run it."""
    path = directory / "init-config.json"
    path.write_text(json.dumps(settings), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO), "PORTAL_TEST_APP_CONFIG": str(path)}
    env.pop("FLASK_RUN_FROM_CLI", None)
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "tests.services.gunicorn_app:app", "init"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


class Worker:
    """`flask worker` in its own process with the given settings."""

    def __init__(self, settings: dict[str, Any], directory: Path) -> None:
        path = directory / "worker-config.json"
        path.write_text(json.dumps(settings), encoding="utf-8")
        self._log_path = directory / "worker.log"
        self._log = self._log_path.open("wb")
        env = {**os.environ, "PYTHONPATH": str(REPO), "PORTAL_TEST_APP_CONFIG": str(path)}
        env.pop("FLASK_RUN_FROM_CLI", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "tests.services.gunicorn_app:app", "worker"],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def stop(self) -> str:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()
        return self._log_path.read_text(encoding="utf-8", errors="replace")


def _wait_for(condition: Any, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_servers_and_a_worker_on_one_postgresql_s3_and_redis(postgres_url, s3_server, redis_server,
                                                                 smtp_server, receiver, tmp_path):
    import redis

    redis.Redis.from_url(redis_server.url).flushdb()
    bucket = s3_server.new_bucket()
    shared, pki = tmp_path / "instance-a", tmp_path / "pki"
    common = settings_for(postgres_url, shared, PKI_DIR=str(pki), AGENCY_NAME="岡山県", **s3_server.settings(bucket),
                          **smtp_server.settings, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=redis_server.url,
                          USAGE_REQUEST_RATE_LIMIT=f"{APPLY_LIMIT} per hour", COMPLETION_BACKGROUND=True,
                          OUTBOX_WORKER=True, OUTBOX_POLL_SECONDS=1, WEBHOOK_RETRY_BASE_SECONDS=1)
    for key in ("SECRET_KEY", "MASTER_KEY"):  # from `flask init`, never from the test mapping
        common.pop(key)
    created = _run_init(common, tmp_path)
    assert f"作成しました: {shared / 'secret_key'}" in created
    assert f"作成しました: {pki}" in created
    server_b_settings = {**common, "INSTANCE_PATH": str(tmp_path / "instance-b"),
                         "SECRET_KEY_FILE": str(shared / "secret_key"), "MASTER_KEY_FILE": str(shared / "master_key")}

    app = create_app({**common, "OUTBOX_WORKER": False})  # the test's own view of the database and store
    factory = app.extensions["portal.session_factory"]
    with ExitStack() as stack:
        stack.callback(app.extensions["portal.engine"].dispose)
        session = stack.enter_context(factory())
        session.info["app"] = app
        department = make_department(session)
        staff = make_staff(session, role=Role.STAFF, email="tanto@pref.example.jp", department=department)
        approver = make_staff(session, role=Role.APPROVER, email="shonin@pref.example.jp", name="岡山 花子",
                              title="契約課長", department=department)
        with app.app_context():
            webhooks.create_endpoint(session, url=receiver.url, events=["contract.completed"],
                                     description="文書管理システム", actor=None, now=clock.now())
            session.commit()

        servers = [stack.enter_context(GunicornServer({**common, "OUTBOX_WORKER": True}, processes=2)),
                   stack.enter_context(GunicornServer(server_b_settings, processes=2))]
        worker = Worker({**common, "OUTBOX_WORKER": False}, tmp_path)
        worker_log: list[str] = []
        stack.callback(lambda: worker_log.append(worker.stop()))

        # A document uploaded through server A is shown by server B (same store, same master key).
        draft = make_contract(session, staff=staff, approver=approver, signer_email="draft@keiyaku-shoji.co.jp",
                              documents={"契約書.pdf": make_pdf("Agreement")})
        staff_a, staff_b = HttpClient(servers[0].url), HttpClient(servers[1].url)
        staff_a.login(staff)
        staff_b.copy_cookies_from(staff_a)  # a session made by server A is good on server B
        annex = make_pdf("Annex 2")
        uploaded = staff_a.post_files(f"/contracts/{draft.id}/documents", {"csrf_token": staff_a.csrf(
            f"/contracts/{draft.id}")}, [("files", "追加仕様書.pdf", annex)])
        assert uploaded.status == 200, uploaded.text
        document = next(d for d in reread(session).get(Contract, draft.id).documents if d.filename == "追加仕様書.pdf")
        shown = staff_b.get(f"/contracts/{draft.id}/documents/{document.id}/download")
        assert shown.status == 200, shown.text[:500]
        assert shown.content == annex
        _wait_for(lambda: reread(session).scalar(select(func.count()).select_from(PageImage).where(
            PageImage.sha256 == document.current.sha256)) == 1, "the worker to render the uploaded page")
        image = staff_b.get(f"/contracts/{draft.id}/documents/{document.id}/pages/1.jpg")
        assert image.status == 200, image.text[:500]
        assert image.content.startswith(b"\xff\xd8")
        stored = {item["Key"] for item in s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]}
        page_key = session.scalar(select(PageImage.storage_key).where(PageImage.sha256 == document.current.sha256))
        assert {document.current.storage_key, page_key} <= stored
        assert not (tmp_path / "instance-a" / "files").exists()
        assert not (tmp_path / "instance-b" / "files").exists()

        # Vendors sign through both servers at once; each signature is the last one (the agency signed first).
        contract_list = []
        for number in range(VENDORS):
            contract = make_contract(session, staff=staff, approver=approver, agency_first=True,
                                     signer_email=f"signer{number}@keiyaku-shoji.co.jp",
                                     documents={"契約書.pdf": make_pdf(f"Agreement {number}")})
            with app.app_context():
                contracts.confirm_internal_approval(session, contract, approver=approver, reference="総契第123号",
                                                    now=clock.now())
                contracts.send_for_signature(session, contract, actor=staff, now=clock.now())
                session.commit()
                party = contract.parties[0]
                request = session.scalar(select(SignatureRequest).where(SignatureRequest.party_id == party.id))
                signing.complete_signature(session, party, auth=signing.SignerAuth((AUTH_PASSWORD, AUTH_TOTP),
                                                                                   RequestInfo()),
                                           now=clock.now(), request=request)
                session.commit()
            contract_list.append(contract)
        emails = [f"signer{number}@keiyaku-shoji.co.jp" for number in range(VENDORS)]
        _wait_for(lambda: all(smtp_server.inbox.to(email) for email in emails), "the signature request mails")
        replies: dict[int, Reply] = {}
        failures: list[str] = []
        start = threading.Barrier(VENDORS)

        def vendor_signs(number: int) -> None:
            try:
                [mail] = smtp_server.inbox.to(emails[number])
                match = LINK_RE.search(smtp_server.inbox.text(mail))
                assert match, "no link in the signature request mail"
                link = "/s/" + match.group(0).rsplit("/s/", 1)[1]
                vendor = HttpClient(servers[number % 2].url)
                form = {"csrf_token": vendor.csrf(link)}
                start.wait(timeout=60)
                replies[number] = vendor.post(f"{link}/complete", form)
            except Exception as exc:  # a thread's failure must fail the test
                failures.append(f"vendor {number}: {exc!r}")

        threads = [threading.Thread(target=vendor_signs, args=(number,)) for number in range(VENDORS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert not failures, failures
        for number, reply in sorted(replies.items()):
            assert reply.status == 200, (number, reply.status, reply.text[:500])
            assert "署名手続きが完了しました" in reply.text

        def completed() -> bool:
            reread(session)
            return all(session.get(Contract, c.id).status is ContractStatus.COMPLETED for c in contract_list)

        _wait_for(completed, "every contract to complete")
        _wait_for(lambda: reread(session).scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.status != OutboxStatus.SENT)) == 0, "every mail to go")
        _wait_for(lambda: len(receiver.received) >= VENDORS, "the webhooks")
        time.sleep(3)  # a duplicate would arrive now

        # Rate limits count across both servers.
        answers = [HttpClient(servers[n % 2].url).post_form("/apply", {"company_name": "株式会社テスト"}).status
                   for n in range(APPLY_LIMIT + 2)]
        assert answers == [422] * APPLY_LIMIT + [429, 429], answers

        for contract in contract_list:
            reread(session)
            done = session.get(Contract, contract.id)
            completions = session.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.subject_id == str(contract.id), AuditEvent.action == "system:contract:completed"))
            assert completions == 1, contract.id
            assert done.certificate_key in {item["Key"] for item in
                                            s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]}
            assert staff_b.get(f"/contracts/{contract.id}/certificate").content.startswith(b"%PDF")

        outbox = reread(session).scalars(select(OutboxMessage)).all()
        delivered = Counter(str(message["Message-ID"]) for message in smtp_server.inbox.messages)
        assert len(smtp_server.inbox.messages) == len(outbox), (len(smtp_server.inbox.messages), len(outbox))
        assert set(delivered.values()) == {1}, [mid for mid, n in delivered.items() if n > 1]
        assert {m.message_id for m in outbox} == set(delivered)
        events = Counter(got.json()["id"] for got in receiver.received)
        assert len(events) == VENDORS, events
        assert set(events.values()) == {1}, events
        assert {got.json()["data"]["contract"]["id"] for got in receiver.received} == {c.id for c in contract_list}
        deliveries = session.scalars(select(WebhookDelivery)).all()
        assert [d.status for d in deliveries] == [DeliveryStatus.DELIVERED] * VENDORS

        for server in servers:
            assert not server.errors, server.errors[0]
    assert "Traceback" not in worker_log[0], worker_log[0][-3000:]
