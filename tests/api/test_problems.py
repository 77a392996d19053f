"""Every error under /api/ is application/problem+json with a Japanese detail, never HTML or a 500."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.auth.models import Role
from portal.contracts.models import Contract
from tests.api.helpers import assert_problem, bearer, metadata, multipart, token_for
from tests.factories import make_department, make_staff
from tests.pdfs import make_pdf


def _count(world) -> int:
    world.refresh()
    return world.session.scalar(select(func.count()).select_from(Contract))


def test_401_without_or_with_a_bad_token_carries_a_bearer_challenge(client, world):
    missing = client.get("/api/v1/contracts")
    body = assert_problem(missing, 401, "unauthorized")
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert body["instance"] == "/api/v1/contracts"
    wrong = client.get("/api/v1/contracts", headers=bearer("not-a-token"))
    assert_problem(wrong, 401, "invalid_token")
    assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    basic = client.get("/api/v1/contracts", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_problem(basic, 401, "unauthorized")


def test_404_and_405_under_the_api_are_problems_not_pages(app, client, world):
    assert_problem(client.get("/api/v1/no-such-thing"), 404, "not_found")
    assert_problem(client.get("/api/v2/contracts"), 404, "not_found")
    not_allowed = client.delete("/api/v1/contracts")
    assert_problem(not_allowed, 405, "method_not_allowed")
    assert set(not_allowed.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    token = token_for(app, world.staff.email)
    assert_problem(client.get("/api/v1/contracts/999999", headers=bearer(token)), 404, "not_found")
    assert client.get("/no-such-page").mimetype == "text/html"  # the rest of the site keeps its pages


def test_400_for_a_body_that_is_not_json(app, client, world):
    token = token_for(app, world.staff.email)
    response = client.post("/api/v1/contracts", data=multipart("{not json"), headers=bearer(token),
                           content_type="multipart/form-data")
    assert_problem(response, 400, "invalid_json")
    as_json = client.post("/api/v1/contracts", data=b"\xff\xfe{", headers=bearer(token),
                          content_type="application/json")
    assert_problem(as_json, 400, "invalid_json")
    text = client.post("/api/v1/contracts", data="a=b", headers=bearer(token), content_type="text/plain")
    assert_problem(text, 415, "unsupported_media_type")


def test_403_for_a_role_that_may_not(app, client, world):
    make_staff(world.session, role=Role.AUDITOR, email="kansa@pref.example.jp", department=world.department)
    response = client.post("/api/v1/contracts", data=multipart(metadata(world), make_pdf()),
                           headers=bearer(token_for(app, "kansa@pref.example.jp")),
                           content_type="multipart/form-data")
    assert_problem(response, 403, "forbidden")


def test_409_when_the_contract_is_no_longer_in_a_state_for_it(app, client, world):
    staff, approver = token_for(app, world.staff.email), token_for(app, world.approver.email)
    created = client.post("/api/v1/contracts", data=multipart(metadata(world), make_pdf()), headers=bearer(staff),
                          content_type="multipart/form-data").get_json()
    approved = client.post(f"/api/v1/contracts/{created['id']}/approve", json={"approval_reference": "総契第1号"},
                           headers=bearer(approver))
    assert approved.status_code == 200, approved.get_json()
    assert client.post(f"/api/v1/contracts/{created['id']}/send", headers=bearer(staff)).status_code == 200
    again = client.post(f"/api/v1/contracts/{created['id']}/send", headers=bearer(staff))
    assert_problem(again, 409)


def test_422_lists_each_wrong_key(app, client, world):
    token = token_for(app, world.staff.email)
    response = client.post("/api/v1/contracts", json=metadata(world, amount="550000", transaction_date="2026/4/1",
                                                              auto_renewal="yes", colour="red"),
                           headers=bearer(token))
    body = assert_problem(response, 422, "invalid_metadata")
    assert set(body["errors"]) == {"amount", "transaction_date", "auto_renewal", "colour"}
    assert _count(world) == 0


@pytest.mark.parametrize(("overrides", "key"), [
    ({"signers": [1, 2]}, "signers[0]"),
    ({"signers": "山田 太郎"}, "signers"),
    ({"signers": [{"role": "boss", "name": "x"}]}, "signers[0].role"),
    ({"signers": [{"role": "counterparty", "name": ["山田"]}]}, "signers[0].name"),
    ({"signers": [{"role": "counterparty", "name": "x", "token": "t"}]}, "signers[0]"),
    ({"signers": [{"role": "agency", "user_email": "a@b.jp"}] * 11}, "signers"),
    ({"business_name": "業" * 201}, "business_name"),
    ({"business_name": "道路清掃\r\nBcc: evil@example.com"}, "business_name"),
    ({"counterparty_name": "株式会社\x00けいやく"}, "counterparty_name"),
    ({"counterparty_name": {"$ne": ""}}, "counterparty_name"),
    ({"amount": 10**30}, "amount"),
    ({"amount": -1}, "amount"),
    ({"amount": 1.5}, "amount"),
    ({"amount": True}, "amount"),
    ({"transaction_date": 20260401}, "transaction_date"),
    ({"planned_conclusion_date": "2026-02-30"}, "planned_conclusion_date"),
    ({"signers": [{"role": "counterparty", "name": "山田", "email": "y@" + "a" * 300 + ".jp"}]},
     "signers[0].email"),
])
def test_hostile_metadata_is_refused_with_the_key_and_nothing_is_created(app, client, world, overrides, key):
    token = token_for(app, world.staff.email)
    response = client.post("/api/v1/contracts", data=multipart(metadata(world, **overrides), make_pdf()),
                           headers=bearer(token), content_type="multipart/form-data")
    body = assert_problem(response, 422)
    assert key in body["errors"], body
    assert _count(world) == 0


def test_a_huge_value_is_422_and_a_body_over_the_limit_is_413(app, client, world):
    token = token_for(app, world.staff.email)
    as_json = client.post("/api/v1/contracts", json=metadata(world, business_name="業" * 100_000),
                          headers=bearer(token))
    body = assert_problem(as_json, 422, "invalid_metadata")
    assert "100000文字" in body["errors"]["business_name"]
    app.config["MAX_CONTENT_LENGTH"] = 100_000
    too_big = client.post("/api/v1/contracts", json=metadata(world, business_name="業" * 100_000),
                          headers=bearer(token))
    assert_problem(too_big, 413, "payload_too_large")
    assert _count(world) == 0


@pytest.mark.parametrize("raw", ["[1, 2]", '"a string"', "null", "12"])
def test_metadata_that_is_not_an_object_is_422(app, client, world, raw):
    token = token_for(app, world.staff.email)
    response = client.post("/api/v1/contracts", data=multipart(raw), headers=bearer(token),
                           content_type="multipart/form-data")
    assert_problem(response, 422, "invalid_metadata")


def test_markup_in_a_name_is_stored_as_text_and_returned_as_json(app, client, world):
    token = token_for(app, world.staff.email)
    created = client.post("/api/v1/contracts", json=metadata(world, business_name='<script>alert("x")</script>'),
                          headers=bearer(token))
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["business_name"] == '<script>alert("x")</script>'
    assert created.mimetype == "application/json"


def test_staff_cannot_create_in_another_department(app, client, world):
    other = make_department(world.session, code="D002", name="土木部 道路課")
    world.session.commit()
    token = token_for(app, world.staff.email)
    for wanted in (other.code, other.name):
        response = client.post("/api/v1/contracts", data=multipart(metadata(world, department=wanted), make_pdf()),
                               headers=bearer(token), content_type="multipart/form-data")
        body = assert_problem(response, 403, "other_department")
        assert "department" in body["errors"]
    assert _count(world) == 0
    own = client.post("/api/v1/contracts", json=metadata(world, department="KEI"), headers=bearer(token))
    assert own.status_code == 201
    assert own.get_json()["department"] == "KEI"
    unnamed = client.post("/api/v1/contracts", json=metadata(world, department=None), headers=bearer(token))
    assert unnamed.get_json()["department"] == "KEI"


def test_an_unexpected_failure_is_a_500_problem_without_internals(app, client, world, monkeypatch):
    from portal.api import views

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(views, "search_contracts", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.get("/api/v1/contracts", headers=bearer(token_for(app, world.staff.email)))
    body = assert_problem(response, 500, "internal_error")
    assert "secret" not in response.get_data(as_text=True)
    assert body["detail"]


def test_another_departments_contract_is_404_and_a_missing_document_too(app, client, world):
    token = token_for(app, world.staff.email)
    created = client.post("/api/v1/contracts", data=multipart(metadata(world), make_pdf()), headers=bearer(token),
                          content_type="multipart/form-data").get_json()
    other = make_staff(world.session, role=Role.STAFF, email="doboku@pref.example.jp",
                       department=make_department(world.session, code="D002", name="土木部 道路課"))
    outsider = token_for(app, other.email)
    assert_problem(client.get(f"/api/v1/contracts/{created['id']}", headers=bearer(outsider)), 404, "not_found")
    assert_problem(client.get(f"/api/v1/contracts/{created['id']}/documents/1", headers=bearer(outsider)), 404)
    assert_problem(client.get(f"/api/v1/contracts/{created['id']}/documents/9", headers=bearer(token)), 404,
                   "not_found")
    listed = client.get("/api/v1/contracts", headers=bearer(outsider)).get_json()
    assert listed["contracts"] == []


def test_approve_with_a_body_that_is_not_an_object_or_a_bad_reference(app, client, world):
    staff, approver = token_for(app, world.staff.email), token_for(app, world.approver.email)
    created = client.post("/api/v1/contracts", data=multipart(metadata(world), make_pdf()), headers=bearer(staff),
                          content_type="multipart/form-data").get_json()
    url = f"/api/v1/contracts/{created['id']}/approve"
    assert_problem(client.post(url, data="[1,2]", content_type="application/json", headers=bearer(approver)), 400,
                   "invalid_json")
    assert_problem(client.post(url, json={"approval_reference": 123}, headers=bearer(approver)), 422)
    assert_problem(client.post(url, json={"approval_reference": "総契\n第1号"}, headers=bearer(approver)), 422)
    assert_problem(client.post(url, json={"approval_reference": ""}, headers=bearer(approver)), 422)
    assert client.post(url, json={"approval_reference": "総契第1号"}, headers=bearer(approver)).status_code == 200
