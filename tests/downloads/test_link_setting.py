"""DOWNLOAD_LINK_DAYS is a setting (R17: 14 days by default, configurable)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portal import clock
from tests.downloads.test_completion import _download_path


@pytest.fixture
def app_config(pki_dir):
    return {"PKI_DIR": pki_dir, "DOWNLOAD_LINK_DAYS": 3}


def test_link_lifetime_is_a_setting(world):
    world.completed_contract()
    path = _download_path(world, world.approver.email)
    assert "3日間" in world.outbox("signature_completed")[0].body
    clock.freeze(clock.now() + timedelta(days=3, minutes=1))
    response = world.signer_client.get(path)
    assert response.status_code == 410
    assert "リンクの有効期限（3日）が切れています" in response.get_data(as_text=True)
