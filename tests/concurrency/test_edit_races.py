"""「編集する」 at the same moment as 送信 or 決裁: a sent contract never carries data its approver did not
approve, and nobody gets a 500.

edit ∥ send: either the edit lands first (the 決裁 is voided, the contract is a 下書き again and sending is
refused), or the send does (the edit is refused with 「この契約はすでに…」 and nothing changes).
edit ∥ approve: whichever comes first, the contract ends as a 下書き needing 決裁 with the edited values:
an approval first is voided by the edit; an edit first makes the approval from the older page refused.
SQLite: a threaded live server; PostgreSQL: gunicorn with three processes (the fixtures of
test_lifecycle_races), ROUNDS contracts at once.
"""

from __future__ import annotations

from collections.abc import Callable

from portal.contracts.editing import form_values
from portal.contracts.models import Contract, ContractStatus
from tests.concurrency.test_lifecycle_races import (  # noqa: F401  (fixtures)
    ROUNDS,
    Race,
    _prepared,
    app_config,
    gunicorn,
    race,
    shared_instance,
)
from tests.factories import register_counterparty
from tests.services.live import Reply

S = ContractStatus
EDITED_AMOUNT = 2_200_000


def edit_form(contract: Contract) -> dict[str, str]:
    """The edit form as the page fills it in, with a new amount; each contract of a race has a signer of its
    own, so not the 取引先's registered authority (R10): named with a reason, as staff would."""
    values = {**form_values(contract), "amount": EDITED_AMOUNT, "tax_amount": 200_000, "signer_override": True,
              "signer_override_reason": "支店長に契約締結権限が委任されているため"}
    form = {}
    for name, value in values.items():
        if value is None or value is False:
            continue
        form[name] = "y" if value is True else value.isoformat() if hasattr(value, "isoformat") else str(value)
    return form


def test_edit_and_send_at_once(race: Race) -> None:  # noqa: F811
    contract_list = [race.approved() for _ in range(ROUNDS)]
    register_counterparty(race.session)  # the 取引先's 申出書 is accepted (R10): drafts may be edited
    calls: dict[str, list[Callable[[], Reply]]] = {}
    for contract in contract_list:
        page = f"/contracts/{contract.id}"
        calls[f"send {contract.id}"] = [_prepared(race.staff_client, page, f"{page}/send")]
        calls[f"edit {contract.id}"] = [_prepared(race.staff_client, f"{page}/edit", f"{page}/edit",
                                                  edit_form(contract))]
    race.at_once(calls)
    for contract in contract_list:
        [sent], [edited] = race.replies[f"send {contract.id}"], race.replies[f"edit {contract.id}"]
        status = race.status(contract)
        if status is S.AWAITING_COUNTERPARTY:
            assert sent.status == 200, sent.text
            assert edited.status == 409, edited.text
            assert "この契約はすでに署名依頼を送信済みです。契約の内容は変更できません。" in edited.text
            assert contract.amount == 1_100_000
            assert contract.approved_at is not None
            assert (race.events(contract, "staff:contract:sent"), race.events(contract, "staff:contract:edited"),
                    race.events(contract, "system:contract:approval-voided")) == (1, 0, 0)
        else:
            assert status is S.DRAFT, status
            assert edited.status == 200, edited.text  # the redirect to the contract page, followed
            assert sent.status == 422, sent.text
            assert "決裁（内部承認）が確認されていません" in sent.text
            assert contract.amount == EDITED_AMOUNT
            assert contract.approved_at is None
            assert (race.events(contract, "staff:contract:sent"), race.events(contract, "staff:contract:edited"),
                    race.events(contract, "system:contract:approval-voided")) == (0, 1, 1)


def test_edit_and_approve_at_once(race: Race) -> None:  # noqa: F811
    contract_list = [race.contract() for _ in range(ROUNDS)]
    register_counterparty(race.session)  # the 取引先's 申出書 is accepted (R10): drafts may be edited
    calls: dict[str, list[Callable[[], Reply]]] = {}
    for contract in contract_list:
        page = f"/contracts/{contract.id}"
        seen = race.approver_client.get(page).text  # the approver's page, with the version it shows
        version = seen.split('name="seen_version" type="hidden" value="', 1)[1].split('"', 1)[0]
        calls[f"approve {contract.id}"] = [_prepared(race.approver_client, page, f"{page}/approve",
                                                     {"reference": "総契第123号", "seen_version": version})]
        calls[f"edit {contract.id}"] = [_prepared(race.staff_client, f"{page}/edit", f"{page}/edit",
                                                  edit_form(contract))]
    race.at_once(calls)
    for contract in contract_list:
        [approved], [edited] = race.replies[f"approve {contract.id}"], race.replies[f"edit {contract.id}"]
        assert race.status(contract) is S.DRAFT
        assert contract.approved_at is None
        assert contract.amount == EDITED_AMOUNT
        assert edited.status == 200, edited.text
        assert race.events(contract, "staff:contract:edited") == 1
        if race.events(contract, "staff:contract:approved"):
            assert approved.status == 200, approved.text
            assert race.events(contract, "system:contract:approval-voided") == 1
        else:
            assert approved.status == 409, approved.text
            assert "この契約は画面を表示した後に変更されています" in approved.text
            assert race.events(contract, "system:contract:approval-voided") == 0
