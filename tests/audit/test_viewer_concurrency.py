"""The viewer under parallel use, against gunicorn with several worker processes, on SQLite and PostgreSQL:
auditors paging and exporting while staff keep writing events (each page view is one). Every request
answers, every use of the viewer is logged exactly once, and every CSV is whole."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from portal.audit.actions import AuditAction
from portal.audit.export import CSV_COLUMNS
from portal.audit.models import AuditEvent
from portal.auth.models import Role
from tests.conftest import reread
from tests.conftest import test_config as portal_test_config
from tests.factories import make_contract, make_department, make_staff
from tests.services.live import GunicornServer, HttpClient, Reply, at_once

PROCESSES = 3
PERSON = quote("髙橋")


@pytest.fixture(scope="module")
def gunicorn(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    root = tmp_path_factory.mktemp("gunicorn")
    config = portal_test_config(database_url, root / "instance", OUTBOX_WORKER=False)
    with GunicornServer(config, processes=PROCESSES) as server:
        yield server




def _browsers(gunicorn: GunicornServer, user: object, count: int) -> list[HttpClient]:
    first = HttpClient(gunicorn.url)
    first.login(user)  # once: a TOTP code is accepted only once
    browsers = [first]
    for _ in range(count - 1):
        browser = HttpClient(gunicorn.url)
        browser.copy_cookies_from(first)
        browsers.append(browser)
    return browsers


def test_auditors_page_and_export_while_staff_write_events(gunicorn, session, app) -> None:
    department = make_department(session)
    staff = make_staff(session, department=department)
    approver = make_staff(session, role=Role.APPROVER, email="shonin@pref.example.jp", department=department)
    auditor = make_staff(session, role=Role.AUDITOR, email="kansa@pref.example.jp", name="監査 太郎",
                         department=department)
    contract = make_contract(session, staff=staff, approver=approver)
    auditors = _browsers(gunicorn, auditor, 8)
    writers = _browsers(gunicorn, staff, 6)
    calls: list[Callable[[], Reply]] = []
    calls += [lambda b=b, n=n: b.get(f"/audit/?page={n % 2 + 1}&person={PERSON}") for n, b in enumerate(auditors[:5])]
    calls += [lambda b=b: b.get("/audit/export.csv?action=group:contract-read") for b in auditors[5:]]
    calls += [lambda b=b: b.get(f"/contracts/{contract.id}") for b in writers]

    replies = at_once(calls)

    assert [r.status for r in replies] == [200] * len(calls), [(r.status, r.text[:200]) for r in replies
                                                               if r.status != 200]
    exports = [r for r in replies if r.headers.get("Content-Type", "").startswith("text/csv")]
    assert len(exports) == 3
    for reply in exports:
        rows = list(csv.reader(io.StringIO(reply.text.removeprefix("\ufeff"))))
        assert rows[0] == CSV_COLUMNS
        assert all(len(row) == len(CSV_COLUMNS) for row in rows)
    reread(session)

    def count(action: AuditAction) -> int:
        return session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == str(action)))

    assert count(AuditAction.AUDIT_VIEWED) == 5
    assert count(AuditAction.AUDIT_EXPORTED) == 3
    assert count(AuditAction.CONTRACT_VIEWED) == 6
    assert not gunicorn.errors
