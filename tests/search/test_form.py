"""The search screen's 状態 checkboxes: drafts and cancelled contracts are left out unless ticked."""

from __future__ import annotations

import re
from datetime import date

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from portal.contracts.models import ContractStatus
from tests.factories import login_as
from tests.search.conftest import World
from tests.search.factories import make_contract

CHECKED = re.compile(r'<input type="checkbox" name="status" value="(\w+)" checked>')


def test_drafts_and_cancelled_are_left_out_unless_asked(client: FlaskClient, session: Session, world: World) -> None:
    make_contract(session, number="A-2026-0003", department=world.department_a, created_by=world.staff_a,
                  transaction_date=date(2026, 2, 1), amount=1, tax_amount=0, status=ContractStatus.CANCELLED)
    login_as(client, world.auditor)

    default = client.get("/search/").get_data(as_text=True)
    drafts = client.get("/search/?status=draft").get_data(as_text=True)
    both = client.get("/search/?status=draft&status=cancelled&status=completed").get_data(as_text=True)
    exported = client.get("/search/export.csv").get_data().decode("utf-8-sig")

    assert "A-2026-0002" not in default  # the draft
    assert "A-2026-0003" not in default  # the cancelled one
    assert "A-2026-0001" in default
    assert set(CHECKED.findall(default)) == {s.value for s in ContractStatus} - {"draft", "cancelled"}
    assert "A-2026-0002" in drafts
    assert "A-2026-0001" not in drafts
    assert set(CHECKED.findall(drafts)) == {"draft"}
    assert {"A-2026-0001", "A-2026-0002", "A-2026-0003"} <= set(re.findall(r"A-\d{4}-\d{4}", both))
    assert "A-2026-0002" not in exported  # the export follows the screen
    assert "A-2026-0001" in exported


def test_an_unknown_status_is_a_japanese_message(client: FlaskClient, world: World) -> None:
    login_as(client, world.auditor)

    response = client.get("/search/?status=<script>", headers={"HX-Request": "true"})

    assert response.status_code == 422
    assert "状態 &lt;script&gt; はありません" in response.get_data(as_text=True)
