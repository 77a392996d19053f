"""JSON API with per-user bearer tokens made by `flask api-tokens create` (stored hashed)."""

from __future__ import annotations

from sqlalchemy import func, select

from portal.auth.models import ApiToken, Role
from portal.contracts.models import Contract
from portal.tokens import hash_token
from tests.api.helpers import assert_problem, bearer, metadata, multipart, token_for
from tests.factories import make_staff
from tests.pdfs import make_pdf


def _create(client, token, meta, *files):
    return client.post("/api/v1/contracts", data=multipart(meta, *files), content_type="multipart/form-data",
                       headers=bearer(token))


def test_token_is_stored_only_as_its_hash(app, world):
    token = token_for(app, world.staff.email)
    world.refresh()
    row = world.session.scalar(select(ApiToken))
    assert row.token_hash == hash_token(token)
    assert token not in row.token_hash


def test_create_approve_send_read_through_the_api(app, world, client):
    staff_token, approver_token = token_for(app, world.staff.email), token_for(app, world.approver.email)
    created = _create(client, staff_token, metadata(world), make_pdf("one"), make_pdf("two", 3))
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["status"] == "draft"
    assert [d["pages"] for d in body["documents"]] == [1, 3]
    contract_id = body["id"]

    refused = client.post(f"/api/v1/contracts/{contract_id}/send", headers={"Authorization": f"Bearer {staff_token}"})
    assert refused.status_code == 422
    assert refused.get_json()["code"] == "approval_missing"

    approved = client.post(f"/api/v1/contracts/{contract_id}/approve", json={"approval_reference": "総契第9号"},
                           headers={"Authorization": f"Bearer {approver_token}"})
    assert approved.status_code == 200, approved.get_json()
    sent = client.post(f"/api/v1/contracts/{contract_id}/send", headers={"Authorization": f"Bearer {staff_token}"})
    assert sent.get_json()["status"] == "awaiting_counterparty"
    assert len(world.outbox("signature_request")) == 1

    shown = client.get(f"/api/v1/contracts/{contract_id}", headers={"Authorization": f"Bearer {staff_token}"})
    assert [s["status"] for s in shown.get_json()["signers"]] == ["requested", "waiting"]
    assert "staff:contract:sent" in [e["action"] for e in shown.get_json()["events"]]
    pdf = client.get(f"/api/v1/contracts/{contract_id}/documents/2", headers={"Authorization": f"Bearer {staff_token}"})
    assert pdf.status_code == 200
    assert pdf.data.startswith(b"%PDF")

    listed = client.get("/api/v1/contracts?amount_min=500000&amount_max=600000&counterparty=けいやく&status="
                        "awaiting_counterparty", headers={"Authorization": f"Bearer {staff_token}"})
    assert [c["id"] for c in listed.get_json()["contracts"]] == [contract_id]
    none = client.get("/api/v1/contracts?amount_min=600001", headers={"Authorization": f"Bearer {staff_token}"})
    assert none.get_json()["contracts"] == []


def test_missing_or_wrong_token_is_refused_in_json(client, world):
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = client.get("/api/v1/contracts", headers=headers)
        assert response.status_code == 401
        assert set(response.get_json()) >= {"type", "title", "status", "detail", "code"}


def test_auditor_token_cannot_create(app, world, client):
    make_staff(world.session, role=Role.AUDITOR, email="kansa@pref.example.jp", department=world.department)
    response = _create(client, token_for(app, "kansa@pref.example.jp"), metadata(world), make_pdf())
    assert_problem(response, 403, "forbidden")
    world.refresh()
    assert world.session.scalar(select(func.count()).select_from(Contract)) == 0


def test_ineligible_contract_is_refused_with_reasons(app, world, client):
    response = _create(client, token_for(app, world.staff.email), metadata(world, auto_renewal=True, term_end=None),
                       make_pdf())
    assert response.status_code == 422
    error = response.get_json()
    assert error["code"] == "contract_not_eligible"
    assert len(error["reasons"]) == 2


def test_openapi_document(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert "/contracts/{contract_id}/approve" in spec["paths"]


def test_list_accepts_the_search_screens_filters_and_wareki(app, client, world):
    headers = {"Authorization": f"Bearer {token_for(app, world.staff.email)}"}
    refused = client.get("/api/v1/contracts?date_from=H31.5.1", headers=headers)
    assert refused.status_code == 422
    assert refused.get_json()["code"] == "invalid_filter"
    listed = client.get("/api/v1/contracts?date_from=令和元年5月1日&per_page=5", headers=headers)
    assert listed.status_code == 200
    assert listed.get_json()["per_page"] == 5
