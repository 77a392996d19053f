"""OpenAPI 3 description of /api/v1 (served at /api/v1/openapi.json)."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/responses/Error"}
_ID = {"name": "contract_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_STATUSES = ["draft", "awaiting_approval", "awaiting_counterparty", "awaiting_agency", "completed", "declined",
             "paper", "cancelled"]


def _ok(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    content = {"application/json": {"schema": schema or {"$ref": "#/components/schemas/Contract"}}}
    return {"description": description, "content": content}


SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "keiyaku-portal API", "version": "1",
             "description": "契約の作成・決裁確認・送信・参照。署名はできません（署名者本人の操作が必要です）。"},
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearer": []}],
    "paths": {
        "/contracts": {
            "get": {"summary": "契約の一覧（検索画面と同じ条件。日付は ISO または和暦）", "parameters": [
                {"name": n, "in": "query", "schema": {"type": t}} for n, t in (
                    ("date_from", "string"), ("date_to", "string"), ("amount_min", "integer"),
                    ("amount_max", "integer"), ("amount_basis", "string"), ("counterparty", "string"),
                    ("business_name", "string"), ("number", "string"), ("status", "string"),
                    ("department", "integer"), ("sort", "string"), ("order", "string"), ("page", "integer"),
                    ("per_page", "integer"))],
                "responses": {"200": _ok("一覧", {"type": "object", "properties": {
                    "contracts": {"type": "array", "items": {"$ref": "#/components/schemas/Contract"}}}}),
                    "401": _ERROR}},
            "post": {"summary": "契約（下書き）の作成", "requestBody": {"required": True, "content": {
                "multipart/form-data": {"schema": {"type": "object", "required": ["metadata"], "properties": {
                    "metadata": {"type": "string", "description": "ContractMetadata の JSON"},
                    "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}},
                "responses": {"201": _ok("作成した契約"), "401": _ERROR, "403": _ERROR, "422": _ERROR}},
        },
        "/contracts/{contract_id}": {"get": {"summary": "契約の状態・署名者・履歴", "parameters": [_ID],
                                             "responses": {"200": _ok("契約"), "404": _ERROR}}},
        "/contracts/{contract_id}/approve": {"post": {
            "summary": "決裁の確認（承認者のトークン）", "parameters": [_ID],
            "requestBody": {"content": {"application/json": {"schema": {
                "type": "object", "required": ["approval_reference"],
                "properties": {"approval_reference": {"type": "string"}}}}}},
            "responses": {"200": _ok("契約"), "403": _ERROR, "422": _ERROR}}},
        "/contracts/{contract_id}/send": {"post": {"summary": "署名依頼の送信", "parameters": [_ID],
                                                   "responses": {"200": _ok("契約"), "422": _ERROR}}},
        "/contracts/{contract_id}/documents/{n}": {"get": {
            "summary": "文書の現在の PDF", "parameters": [_ID, {"name": "n", "in": "path", "required": True,
                                                            "schema": {"type": "integer"}}],
            "responses": {"200": {"description": "PDF", "content": {"application/pdf": {}}}, "404": _ERROR}}},
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                       "description": "flask --app app api-tokens create --user EMAIL"}},
        "responses": {"Error": {"description": "エラー", "content": {"application/json": {"schema": {
            "type": "object", "properties": {"error": {"type": "object", "required": ["code", "message"],
                                                       "properties": {"code": {"type": "string"},
                                                                      "message": {"type": "string"},
                                                                      "reasons": {"type": "array",
                                                                                  "items": {"type": "string"}}}}}}}}}},
        "schemas": {
            "ContractMetadata": {"type": "object", "required": [
                "business_name", "counterparty_name", "amount", "transaction_date", "planned_conclusion_date",
                "signers"], "properties": {
                "business_name": {"type": "string"}, "department": {"type": "string"},
                "counterparty_name": {"type": "string"}, "amount": {"type": "integer"},
                "tax_amount": {"type": "integer"}, "transaction_date": {"type": "string", "format": "date"},
                "term_start": {"type": "string", "format": "date"}, "term_end": {"type": "string", "format": "date"},
                "auto_renewal": {"type": "boolean"}, "paper_required_by_law": {"type": "boolean"},
                "council_approval_required": {"type": "boolean"},
                "planned_conclusion_date": {"type": "string", "format": "date"}, "access_code": {"type": "string"},
                "signers": {"type": "array", "items": {"type": "object", "required": ["role"], "properties": {
                    "role": {"type": "string", "enum": ["counterparty", "agency"]},
                    "organization": {"type": "string"}, "title": {"type": "string"}, "name": {"type": "string"},
                    "email": {"type": "string"}, "user_email": {"type": "string"}}}}}},
            "Contract": {"type": "object", "properties": {
                "id": {"type": "integer"}, "number": {"type": "string"}, "business_name": {"type": "string"},
                "status": {"type": "string", "enum": _STATUSES}, "amount": {"type": "integer"},
                "tax_amount": {"type": "integer"}, "documents": {"type": "array", "items": {"type": "object"}},
                "signers": {"type": "array", "items": {"type": "object"}},
                "events": {"type": "array", "items": {"type": "object"}}}},
        },
    },
}
