"""The public form is limited per IP address (USAGE_REQUEST_RATE_LIMIT)."""

from __future__ import annotations

import pytest

from tests.usage_requests.conftest import form_data, submit


@pytest.fixture
def app_config():
    return {"RATELIMIT_ENABLED": True, "USAGE_REQUEST_RATE_LIMIT": "2 per hour"}


def test_third_submission_from_one_address_within_the_hour_is_429(client, department):
    assert submit(client, form_data()).status_code == 303
    assert submit(client, form_data()).status_code == 303
    response = submit(client, form_data())
    assert response.status_code == 429
    assert "操作が多すぎます" in response.get_data(as_text=True)


def test_another_address_is_counted_separately(client, department):
    for _ in range(2):
        submit(client, form_data())
    other = submit(client, form_data(), environ_overrides={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 303


def test_the_form_page_itself_is_not_limited(client, department):
    for _ in range(5):
        assert client.get("/apply").status_code == 200
