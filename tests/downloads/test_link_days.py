"""DOWNLOAD_LINK_DAYS is what the completion mail, the link itself and its expiry page say."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from portal import clock

VENDOR = "yamada@keiyaku-shoji.co.jp"


@pytest.fixture
def app_config(pki_dir: str) -> dict[str, Any]:
    return {"PKI_DIR": pki_dir, "AGENCY_NAME": "岡山県", "CONTACT_PHONE": "086-000-0000", "DOWNLOAD_LINK_DAYS": 7}


def test_a_seven_day_setting_is_what_the_completion_mail_says_and_does(world: Any) -> None:
    world.department.contact_phone = "086-226-7470"
    world.session.commit()
    world.completed_contract()

    [mail] = [m for m in world.outbox("signature_completed") if m.recipient == VENDOR]
    body = world.delivered_body(mail)
    assert "このURLの有効期間は7日間" in body
    assert "14日間" not in body  # the default period (a date such as 12月14日 may be in the mail)
    assert "電話: 086-226-7470" in body  # the department's own phone, not the general one
    assert "/help?department=KEI" in body

    path = world.download_path(VENDOR)
    page = world.signer_client.get(path).get_data(as_text=True)
    assert "086-226-7470" in page  # the download page names whom to ask
    clock.freeze(clock.now() + timedelta(days=7, minutes=1))
    response = world.signer_client.get(path)
    assert response.status_code == 410
    html = response.get_data(as_text=True)
    assert "リンクの有効期限（7日）が切れています" in html
    assert "086-226-7470" in html
