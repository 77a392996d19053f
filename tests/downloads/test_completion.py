"""Completion (R4, R17, R18): final signatures, download links that expire, the completion certificate."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from portal import clock
from portal.contracts.completion import complete_contract
from portal.contracts.lifecycle import TransitionRefused as NotCompleted
from portal.contracts.models import ContractStatus
from portal.contracts.signatures import verify_bytes


def _download_path(world, recipient: str) -> str:
    return world.download_path(recipient)


def test_download_link_expires_after_14_days(world):
    contract_id = world.completed_contract()
    path = _download_path(world, "yamada@keiyaku-shoji.co.jp")
    document = world.contract(contract_id).documents[0]
    clock.freeze(clock.now() + timedelta(days=13, hours=23))
    assert world.signer_client.get(f"{path}/documents/{document.id}").status_code == 200
    clock.freeze(clock.now() + timedelta(hours=2))
    for url in (path, f"{path}/documents/{document.id}", f"{path}/certificate"):
        response = world.signer_client.get(url)
        assert response.status_code == 410
        assert "リンクの有効期限（14日）が切れています" in response.get_data(as_text=True)
    # staff can always download from the portal
    staff_copy = world.staff_client.get(f"/contracts/{contract_id}/documents/{document.id}/download")
    assert hashlib.sha256(staff_copy.data).hexdigest() == document.current.sha256


def test_completion_requires_every_signer(app, world):
    contract_id = world.sent_contract()
    world.sign_as_counterparty(world.signing_link())
    contract = world.contract(contract_id)
    with app.app_context(), pytest.raises(NotCompleted):
        complete_contract(world.session, contract, now=clock.now())
    world.refresh()
    assert world.contract(contract_id).status is ContractStatus.AWAITING_AGENCY


def test_tampered_download_fails_verification(app, world):
    contract_id = world.completed_contract()
    document = world.contract(contract_id).documents[0]
    path = _download_path(world, "yamada@keiyaku-shoji.co.jp")
    data = bytearray(world.signer_client.get(f"{path}/documents/{document.id}").data)
    position = data.index(b"page 1")
    data[position] ^= 0x01
    with app.app_context():
        assert not verify_bytes(bytes(data)).is_valid


def test_unknown_download_link_is_404(world):
    response = world.signer_client.get("/d/" + "y" * 43)
    assert response.status_code == 404
    assert "新しいリンクが送られた可能性があります" in response.get_data(as_text=True)
