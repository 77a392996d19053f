"""R20: a metadata correction is a new version; search finds the new value, the history shows both."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from portal import clock
from portal.audit.models import AuditEvent
from portal.contracts.models import Contract
from portal.preservation import service
from portal.search.criteria import parse_criteria
from portal.search.service import search_contracts
from tests.conftest import post_form, reread
from tests.factories import login_as
from tests.search.conftest import World


def _contract(session: Session, number: str) -> Contract:
    contract = session.scalar(select(Contract).where(Contract.number == number))
    assert contract is not None
    return contract


def _numbers(app: Flask, session: Session, world: World, **query: str) -> set[str]:
    with app.app_context():
        page = search_contracts(reread(session), parse_criteria(MultiDict(query)), actor=world.auditor)
    return {c.number for c in page.items}


def test_correction_through_the_form_is_in_the_history_and_found_by_its_new_value(
    app: Flask, client: FlaskClient, session: Session, world: World
) -> None:
    contract = _contract(session, "A-2019-0001")
    documents_before = [(d.filename, [r.sha256 for r in d.revisions]) for d in contract.documents]
    login_as(client, world.staff_a)

    response = post_form(client, f"/preservation/contracts/{contract.id}/correct",
                         {"amount": "1,210,000", "tax_amount": "110,000", "counterparty_name": "株式会社ケイヤク商会",
                          "reason": "金額の入力誤り（決裁文書と照合）"})

    assert response.status_code == 303
    html = client.get(f"/preservation/contracts/{contract.id}/history").get_data(as_text=True)
    for text in ("第2版", "金1,100,000円", "金1,210,000円", "株式会社ケイヤク商事", "株式会社ケイヤク商会",
                 "金額の入力誤り（決裁文書と照合）", world.staff_a.name):
        assert text in html, text
    assert _numbers(app, session, world, amount_min="1210000", amount_max="1210000") == {"A-2019-0001"}
    assert _numbers(app, session, world, amount_min="1100000", amount_max="1100000") == set()
    assert _numbers(app, session, world, amount_min="1100000", amount_max="1100000", history="1") == {"A-2019-0001"}
    assert "A-2019-0001" in _numbers(app, session, world, counterparty="ケイヤク商会")
    assert "A-2019-0001" in _numbers(app, session, world, counterparty="㈱ケイヤク商事", history="1")
    assert "A-2019-0001" not in _numbers(app, session, world, counterparty="㈱ケイヤク商事")
    contract = _contract(reread(session), "A-2019-0001")
    assert [(d.filename, [r.sha256 for r in d.revisions]) for d in contract.documents] == documents_before
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "staff:contract:metadata-corrected"))
    assert event is not None
    assert event.details["changes"][0] == {"field": "amount", "old": "1100000", "new": "1210000"}


def test_each_correction_is_a_new_version_and_the_date_accepts_wareki(app: Flask, session: Session,
                                                                      world: World) -> None:
    contract = _contract(session, "A-2019-0002")
    with app.app_context():
        service.correct_metadata(session, contract, {"transaction_date": "平成31年4月30日"}, reason="日付誤り",
                                 actor=world.staff_a, now=clock.now())
        service.correct_metadata(session, contract, {"transaction_date": "R1.5.1", "business_name": "庁舎警備"},
                                 reason="元に戻す", actor=world.admin, now=clock.now())
        session.commit()
        history = service.correction_history(session, contract)

    assert [v.version for v in history] == [3, 2]
    assert [(c.field, c.old_value, c.new_value) for c in history[1].changes] == [
        ("transaction_date", "2019-05-01", "2019-04-30")]
    assert {c.field for c in history[0].changes} == {"transaction_date", "business_name"}
    assert service.display_value("transaction_date", "2019-05-01") == "令和元年5月1日（2019-05-01）"


@pytest.mark.parametrize(("number", "actor", "changes", "reason", "error", "message"), [
    ("A-2026-0002", "staff_a", {"amount": "1"}, "x", service.NotCorrectable, "締結済みの契約"),
    ("A-2019-0001", "auditor", {"amount": "1"}, "x", service.Forbidden, "権限"),
    ("A-2019-0001", "staff_b", {"amount": "1"}, "x", service.Forbidden, "権限"),
    ("A-2019-0001", "staff_a", {"amount": "1"}, " ", service.InvalidCorrection, "理由"),
    ("A-2019-0001", "staff_a", {"amount": "1,100,000"}, "x", service.InvalidCorrection, "現在の値と同じ"),
    ("A-2019-0001", "staff_a", {"tax_amount": "2000000"}, "x", service.InvalidCorrection, "超えて"),
    ("A-2019-0001", "staff_a", {"transaction_date": "H31.5.1"}, "x", service.InvalidCorrection, "平成の期間"),
])
def test_refused_corrections_change_nothing(app: Flask, session: Session, world: World, number: str, actor: str,
                                           changes: dict[str, str], reason: str, error: type[Exception],
                                           message: str) -> None:
    contract = _contract(session, number)
    with app.app_context(), pytest.raises(error) as raised:
        service.correct_metadata(session, contract, changes, reason=reason, actor=getattr(world, actor),
                                 now=clock.now())

    assert message in raised.value.message  # type: ignore[attr-defined]
    session.rollback()
    assert _contract(reread(session), number).amount in (1_100_000, 880_000)
