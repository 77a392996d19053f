"""R12: contracts that must stay on paper are refused at creation and at sending, each with its reason."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from portal.contracts import eligibility
from portal.contracts.models import Contract, ContractStatus
from portal.counterparties.models import Counterparty
from portal.usage_requests.rules import FREE_MAIL_MESSAGE
from tests.contracts.fixtures import today


def _contracts(world) -> int:
    world.refresh()
    return world.session.scalar(select(func.count()).select_from(Contract))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"term_end": None}, eligibility.NO_END_DATE),
        ({"auto_renewal": "y"}, eligibility.AUTO_RENEWAL),
        ({"paper_required_by_law": "y"}, eligibility.PAPER_BY_LAW),
        ({"council_approval_required": "y"}, eligibility.COUNCIL_APPROVAL),
        ({"term_end": "LONG"}, eligibility.term_too_long(10)),
    ],
    ids=["no-end-date", "auto-renewal", "paper-by-law", "council-approval", "over-10-years"],
)
def test_creation_is_refused_with_its_reason_and_nothing_is_saved(world, overrides, message):
    if overrides.get("term_end") == "LONG":
        overrides = {"term_end": (today() + timedelta(days=3653)).isoformat()}
    response = world.create(**overrides)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert _contracts(world) == 0
    assert world.outbox() == []


def test_counterparty_that_declined_e_contracting_is_refused(world):
    from portal import clock

    world.session.add(Counterparty(name="株式会社けいやく商事", name_normalized="株式会社ケイヤク商事",
                                   declined_e_contract=True, created_at=clock.now(), updated_at=clock.now()))
    world.session.commit()
    response = world.create(counterparty_name="㈱けいやく商事")
    assert response.status_code == 422
    assert eligibility.COUNTERPARTY_DECLINED in response.get_data(as_text=True)


def test_sending_is_refused_when_the_counterparty_declined_after_the_draft(world):
    from tests.pdfs import make_pdf

    contract_id = world.create_id()
    world.upload(contract_id, (make_pdf(), "a.pdf"))
    world.approve(contract_id)
    world.refresh()
    world.session.scalar(select(Counterparty)).declined_e_contract = True
    world.session.commit()
    response = world.send(contract_id)
    assert response.status_code == 422
    assert eligibility.COUNTERPARTY_DECLINED in response.get_data(as_text=True)
    assert world.contract(contract_id).status is ContractStatus.APPROVED  # 承認済み（送信待ち）
    assert world.outbox("signature_request") == []


def test_free_mail_signer_is_refused(world):
    response = world.create(signer_email="yamada@gmail.com")
    assert response.status_code == 422
    assert FREE_MAIL_MESSAGE in response.get_data(as_text=True)
    assert _contracts(world) == 0


class _Terms:
    def __init__(self, start, end, **flags):
        self.term_start, self.term_end = start, end
        self.auto_renewal = flags.get("auto_renewal", False)
        self.paper_required_by_law = flags.get("paper", False)
        self.council_approval_required = flags.get("council", False)


def test_exactly_ten_years_is_allowed_one_day_more_is_not():
    start = date(2026, 4, 1)
    assert eligibility.ineligibility_reasons(_Terms(start, date(2036, 3, 31))) == []
    assert eligibility.ineligibility_reasons(_Terms(start, date(2036, 4, 1))) == [eligibility.term_too_long(10)]
    assert eligibility.ineligibility_reasons(_Terms(start, date(2031, 4, 1)), max_term_years=5) == [
        eligibility.term_too_long(5)]


def test_every_broken_rule_is_listed():
    reasons = eligibility.ineligibility_reasons(_Terms(date(2026, 4, 1), None, auto_renewal=True, paper=True,
                                                       council=True), counterparty_declined=True)
    assert len(reasons) == 5
