"""The OpenAPI document is valid, names exactly the routes of /api/v1, and every field the API returns."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from tests.api.helpers import bearer, metadata, multipart, token_for
from tests.pdfs import make_pdf

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _url_map_operations(app) -> set[tuple[str, str]]:
    operations = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        assert rule.rule.startswith("/api/v1/"), rule.rule
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        operations |= {(path, method.lower()) for method in rule.methods - IGNORED_METHODS}
    return operations


def test_the_document_is_valid_openapi(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    validate(spec)
    assert spec["openapi"].startswith("3.1")


def test_its_paths_and_methods_are_the_url_maps(app, client):
    spec = client.get("/api/v1/openapi.json").get_json()
    documented = {(path, method) for path, item in spec["paths"].items() for method in item}
    assert documented == _url_map_operations(app)


def test_the_api_cannot_sign(app, world):
    """Signing needs the signer's own action: an approver's API token neither opens their signing page nor
    signs there, and no API operation signs."""
    contract_id = world.sent_contract(signing_order="agency_first")
    [agency_party, _] = world.party_ids(contract_id)
    token = token_for(app, world.approver.email)
    robot = app.test_client()
    page = f"/s/staff/{agency_party}"
    opened = robot.get(page, headers=bearer(token))
    assert opened.status_code == 302
    assert opened.headers["Location"].startswith("/login")
    assert robot.post(f"{page}/complete", headers=bearer(token)).status_code in (302, 400)
    for path in (f"/api/v1/contracts/{contract_id}/sign", f"/api/v1/contracts/{contract_id}/parties/1/sign"):
        assert robot.post(path, headers=bearer(token)).status_code in (404, 405)
    contract = world.contract(contract_id)
    assert [p.status.value for p in contract.parties] == ["requested", "waiting"]
    assert not [path for path, _ in _url_map_operations(app) if "sign" in path]
    assert "完了する" in world.approver_client.get(page).get_data(as_text=True)  # the approver's own session can


def _schema(spec, ref_or_schema):
    if "$ref" in ref_or_schema:
        return _schema(spec, spec["components"]["schemas"][ref_or_schema["$ref"].rsplit("/", 1)[1]])
    if "allOf" in ref_or_schema:
        merged: dict = {"type": "object", "properties": {}, "required": []}
        for part in ref_or_schema["allOf"]:
            part = _schema(spec, part)
            merged["properties"].update(part.get("properties", {}))
            merged["required"] += part.get("required", [])
        return merged
    return ref_or_schema


def _assert_documented(spec, schema, value, where: str) -> None:
    """Every key of `value` is a property of `schema`, recursively (the document misses no field)."""
    schema = _schema(spec, schema)
    if isinstance(value, dict) and "additionalProperties" in schema and "properties" not in schema:
        for key, item in value.items():
            _assert_documented(spec, schema["additionalProperties"], item, f"{where}.{key}")
    elif isinstance(value, dict):
        properties = schema.get("properties", {})
        assert set(value) <= set(properties), f"{where}: undocumented {sorted(set(value) - set(properties))}"
        assert set(schema.get("required", [])) <= set(value), f"{where}: missing {schema.get('required')}"
        for key, item in value.items():
            _assert_documented(spec, properties[key], item, f"{where}.{key}")
    elif isinstance(value, list) and value:
        for item in value:
            _assert_documented(spec, schema["items"], item, f"{where}[]")


def test_every_returned_field_is_documented(app, client, world):
    spec = client.get("/api/v1/openapi.json").get_json()
    staff, approver = token_for(app, world.staff.email), token_for(app, world.approver.email)
    created = client.post("/api/v1/contracts", data=multipart(metadata(world), make_pdf()), headers=bearer(staff),
                          content_type="multipart/form-data")
    contract_id = created.get_json()["id"]
    client.post(f"/api/v1/contracts/{contract_id}/approve", json={"approval_reference": "総契第1号"},
                headers=bearer(approver))
    sent = client.post(f"/api/v1/contracts/{contract_id}/send", headers=bearer(staff))
    answers = {
        ("/contracts", "post", "201"): created,
        ("/contracts/{contract_id}/send", "post", "200"): sent,
        ("/contracts/{contract_id}", "get", "200"): client.get(f"/api/v1/contracts/{contract_id}",
                                                               headers=bearer(staff)),
        ("/contracts", "get", "200"): client.get("/api/v1/contracts", headers=bearer(staff)),
        ("/search", "get", "200"): client.get("/api/v1/search", headers=bearer(staff)),
        ("/contracts", "get", "422"): client.get("/api/v1/contracts?date_from=x", headers=bearer(staff)),
        ("/contracts", "post", "422"): client.post("/api/v1/contracts", json=metadata(world, auto_renewal=True,
                                                                                      term_end=None),
                                                   headers=bearer(staff)),
    }
    for (path, method, status), response in answers.items():
        assert str(response.status_code) == status, (path, response.get_json())
        documented = spec["paths"][path][method]["responses"][status]
        if "$ref" in documented:
            documented = spec["components"]["responses"][documented["$ref"].rsplit("/", 1)[1]]
        [(media_type, content)] = documented["content"].items()
        assert response.mimetype == media_type
        _assert_documented(spec, content["schema"], response.get_json(), f"{method} {path} {status}")
