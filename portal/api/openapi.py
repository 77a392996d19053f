"""OpenAPI 3.1 description of /api/v1 (served at /api/v1/openapi.json) and of the webhooks sent.

tests/api/test_openapi.py validates it and checks that its paths and methods are the URL map's and
that the schemas list every field the serializers return.
"""

from __future__ import annotations

from typing import Any

from portal.contracts.models import ContractStatus, PartyRole, PartyStatus
from portal.search.criteria import SORT_KEYS, AmountBasis
from portal.webhooks.models import WebhookEventType

STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
BOOL: dict[str, Any] = {"type": "boolean"}
DATE: dict[str, Any] = {"type": "string", "format": "date"}
DATE_OR_NULL: dict[str, Any] = {"type": ["string", "null"], "format": "date"}
TIME_OR_NULL: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
CONTRACT_ID = {"name": "contract_id", "in": "path", "required": True, "schema": INT}
PROBLEM_CODES = {
    "400": "JSON として読めない本文、不正な Idempotency-Key",
    "401": "トークンがない・無効・失効・期限切れ（WWW-Authenticate: Bearer）",
    "403": "役割・読み取り専用トークン・他の所属",
    "404": "見つからない（他の所属の契約も）",
    "405": "この URL で使えないメソッド（Allow ヘッダーあり）",
    "409": "現在の状態ではできない操作、同じ Idempotency-Key の処理中",
    "415": "受け付けない Content-Type",
    "422": "入力の誤り（errors に項目ごとのメッセージ）、Idempotency-Key の別内容での再利用",
}

SEARCH_PARAMETERS = [
    ("date_from", STR, "取引年月日（から）。YYYY-MM-DD または和暦（令和7年4月1日、R7.4.1）"),
    ("date_to", STR, "取引年月日（まで）"),
    ("amount_min", INT, "金額の下限（円）"), ("amount_max", INT, "金額の上限（円）"),
    ("amount_basis", {"type": "string", "enum": [b.value for b in AmountBasis]},
     "金額の基準: 税込（incl）・税抜（excl）"),
    ("counterparty", STR, "取引先（表記ゆれを吸収した部分一致）"), ("business_name", STR, "業務名（部分一致）"),
    ("number", STR, "契約番号（部分一致）"),
    ("status", {"type": "string", "enum": [s.value for s in ContractStatus]}, "状態（複数はカンマ区切り）"),
    ("department", INT, "所属の ID"),
    ("history", {"type": "string", "enum": ["1", "true", "on"]}, "訂正前の値でも検索する"),
    ("sort", {"type": "string", "enum": list(SORT_KEYS)}, "並び順の項目"),
    ("order", {"type": "string", "enum": ["asc", "desc"]}, "昇順・降順"),
    ("page", INT, "ページ（1から）"), ("per_page", INT, "1ページの件数（上限 SEARCH_MAX_PAGE_SIZE）"),
]


def _problems(*codes: str) -> dict[str, Any]:
    return {code: {"$ref": f"#/components/responses/Problem{code}"} for code in codes}


def _json(schema_ref: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}}}


def _list_operation(summary: str, *, deprecated: bool = False) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary, "operationId": "searchContracts" if deprecated else "listContracts",
        "parameters": [{"name": n, "in": "query", "schema": s, "description": d} for n, s, d in SEARCH_PARAMETERS],
        "responses": {"200": _json("ContractPage", "条件に合う契約（トークンの職員が見られるものだけ）"),
                      **_problems("401", "403", "422")}}
    if deprecated:
        operation["deprecated"] = True
        operation["description"] = ("GET /contracts の別名（旧パス）。同じ条件・同じ応答です。"
                                    "新しい連携では /contracts を使ってください。")
    return operation


def _contract_schema() -> dict[str, Any]:
    document = {"type": "object", "required": ["n", "filename", "pages", "sha256", "revisions"], "properties": {
        "n": INT, "filename": STR, "pages": INT,
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "現在の版の SHA-256"},
        "revisions": {"type": "integer", "description": "保存されている版の数（原本・署名ごと・最終）"}}}
    signer = {"type": "object", "required": ["position", "role", "organization", "title", "name", "email", "status",
                                             "signed_at", "auth_methods"], "properties": {
        "position": INT, "role": {"type": "string", "enum": [r.value for r in PartyRole]}, "organization": STR,
        "title": STR, "name": STR, "email": {"type": "string", "format": "email"},
        "status": {"type": "string", "enum": [s.value for s in PartyStatus]}, "signed_at": TIME_OR_NULL,
        "auth_methods": {"type": "array", "items": STR}}}
    consent = {"type": "object", "required": ["by", "on", "method"], "properties": {
        "by": STR, "on": DATE, "method": STR}}
    event = {"type": "object", "required": ["at", "action", "actor", "description"], "properties": {
        "at": {"type": "string", "format": "date-time"}, "action": STR, "actor": STR,
        "description": {"type": "string", "description": "操作の内容（日本語の文）"}}}
    properties = {
        "id": INT, "number": {"type": "string", "description": "契約番号（所属コード-年-連番）"},
        "business_name": STR, "department": {"type": "string", "description": "所属コード"},
        "contract_type": {"type": "string", "description": "契約の種類"},
        "consent": {"oneOf": [{"type": "null"}, consent], "description": "相手方の事前の承諾（工事）"},
        "amends": {"type": ["string", "null"], "description": "変更前の契約の契約番号（変更契約のとき）"},
        "counterparty_name": STR, "amount": {"type": "integer", "description": "税込金額（円）"},
        "tax_amount": {"type": "integer", "description": "うち消費税額（円）"},
        "tax_excluded_amount": {"type": "integer", "description": "税抜金額（円）"},
        "transaction_date": DATE, "term_start": DATE_OR_NULL, "term_end": DATE_OR_NULL,
        "planned_conclusion_date": DATE, "status": {"type": "string", "enum": [s.value for s in ContractStatus]},
        "status_reason": STR, "approved": BOOL, "approval_reference": STR, "completed_at": TIME_OR_NULL,
        "documents": {"type": "array", "items": document}, "signers": {"type": "array", "items": signer},
    }
    return {
        "Contract": {"type": "object", "required": sorted(properties), "properties": properties},
        "ContractWithEvents": {"allOf": [{"$ref": "#/components/schemas/Contract"}, {
            "type": "object", "required": ["events"],
            "properties": {"events": {"type": "array", "items": event, "description": "監査ログ（古い順）"}}}]},
    }


def _metadata_schema() -> dict[str, Any]:
    def text(limit: int, description: str = "") -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "maxLength": limit}
        return {**schema, "description": description} if description else schema

    signer = {"type": "object", "required": ["role"], "additionalProperties": False, "properties": {
        "role": {"type": "string", "enum": [r.value for r in PartyRole]},
        "organization": text(200), "title": text(100), "name": text(100, "相手方の契約締結権限者の氏名"),
        "email": text(254, "相手方の署名者のメールアドレス"),
        "user_email": text(254, "庁内の署名者（承認者）のアカウントのメールアドレス")}}
    return {"type": "object", "additionalProperties": False, "required": [
        "business_name", "contract_type", "amount", "transaction_date", "planned_conclusion_date", "signers"],
        "description": (
            "取引先は counterparty_id（受付済みの利用申出書で登録された取引先）か counterparty_name で指定します。"
            "取引先に契約締結権限者が登録されていれば、相手方の署名者はその人（役職・氏名・メールアドレスが一致）"
            "でなければならず、別の人にするには signer_override_reason が必要です（操作ログと契約に残ります）。"
            "counterparty_id で申出書のない取引先を指定できるのは管理者だけで、counterparty_override_reason が"
            "必要です。「電子契約を希望しない」取引先とは作成できません（422）。"),
        "properties": {
            "business_name": text(200, "業務名"),
            "contract_type": text(50, "契約の種類（設定 CONTRACT_TYPES のいずれか: 委託・物品・工事・賃貸借・その他）"),
            "consent": {"type": "object", "additionalProperties": False, "required": ["by", "on", "method"],
                        "description": "相手方の事前の承諾（工事の請負契約は送信前に必須）", "properties": {
                            "by": text(200, "承諾した方"), "on": DATE, "method": text(100, "承諾の方法")}},
            "department": text(100, "所属コードまたは所属名。トークンの職員の所属のみ（省略可）"),
            "counterparty_name": text(200, "取引先（counterparty_id がないとき必須。表記ゆれを吸収して照合）"),
            "counterparty_id": {"type": "integer", "minimum": 1, "description": "登録された取引先の番号（R10）"},
            "signer_override_reason": text(500, "登録された契約締結権限者以外を署名者にする理由"),
            "counterparty_override_reason": text(500, "申出書のない取引先と作成する理由（管理者のみ）"),
            "amount": {"type": "integer", "minimum": 0, "description": "税込金額（円）"},
            "tax_amount": {"type": "integer", "minimum": 0}, "transaction_date": DATE,
            "term_start": DATE_OR_NULL, "term_end": DATE_OR_NULL, "planned_conclusion_date": DATE,
            "auto_renewal": BOOL, "paper_required_by_law": BOOL, "council_approval_required": BOOL,
            "access_code": text(100, "アクセスコード（相手方に別途伝える）"),
            "signers": {"type": "array", "maxItems": 10, "items": signer, "description": "署名の順"}}}


def _webhooks() -> dict[str, Any]:
    hooks = {}
    for event in WebhookEventType:
        hooks[event.value] = {"post": {
            "summary": f"{event.label}（{event.value}）",
            "description": "X-Keiyaku-Signature: sha256=HMAC-SHA256(シークレット, X-Keiyaku-Timestamp + \".\" + 本文)。"
                           "2xx 以外はやり直します（docs/webhooks.md）。",
            "parameters": [{"name": n, "in": "header", "required": True, "schema": STR} for n in (
                "X-Keiyaku-Signature", "X-Keiyaku-Timestamp", "X-Keiyaku-Event", "X-Keiyaku-Event-Id")],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/WebhookEvent"}}}},
            "responses": {"2XX": {"description": "受け取った（それ以外は再送）"}}}}
    return hooks


def _webhook_event_schema() -> dict[str, Any]:
    contract = {"type": "object", "required": ["id", "number", "business_name", "department", "status",
                                               "documents"], "properties": {
        "id": INT, "number": STR, "business_name": STR, "department": STR,
        "status": {"type": "string", "enum": [s.value for s in ContractStatus]},
        "documents": {"type": "array", "items": {"type": "object", "required": ["n", "filename", "sha256"],
                                                 "properties": {"n": INT, "filename": STR, "sha256": STR}}}}}
    party = {"type": "object", "required": ["position", "role", "signed_at"], "properties": {
        "position": INT, "role": {"type": "string", "enum": [r.value for r in PartyRole]}, "signed_at": TIME_OR_NULL}}
    usage_request = {"type": "object", "required": ["id", "receipt_number", "company_name", "status", "department",
                                                    "confirmed_at"], "properties": {
        "id": INT, "receipt_number": {"type": "string", "description": "受付番号"},
        "company_name": {"type": "string", "description": "商号（名称）"}, "status": STR,
        "department": {"type": ["string", "null"]}, "confirmed_at": TIME_OR_NULL}}
    return {"type": "object", "required": ["id", "type", "occurred_at", "data"], "properties": {
        "id": {"type": "string", "format": "uuid", "description": "イベント ID（再送でも同じ。重複の排除に）"},
        "type": {"type": "string", "enum": [e.value for e in WebhookEventType]},
        "occurred_at": {"type": "string", "format": "date-time"},
        "data": {"type": "object", "properties": {"contract": contract, "party": party,
                                                  "usage_request": usage_request}}}}


def spec() -> dict[str, Any]:
    problem_schema = {"type": "object", "required": ["type", "title", "status", "detail", "code"], "properties": {
        "type": {"type": "string", "format": "uri", "description": "urn:keiyaku-portal:problem:<code>"},
        "title": STR, "status": INT, "detail": {"type": "string", "description": "日本語の説明"},
        "instance": STR, "code": STR,
        "errors": {"type": "object", "additionalProperties": STR, "description": "項目ごとのメッセージ"},
        "reasons": {"type": "array", "items": STR, "description": "電子契約にできない理由"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "keiyaku-portal API", "version": "1",
                 "description": "契約の作成・決裁確認・送信・参照。署名はできません（署名者本人の操作が必要です）。"
                                "エラーは RFC 9457 の application/problem+json で返します。"},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": {
            "/contracts": {
                "get": _list_operation("契約の一覧（検索画面と同じ条件）"),
                "post": {
                    "summary": "契約（下書き）の作成", "operationId": "createContract",
                    "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                    "schema": {"type": "string", "maxLength": 255},
                                    "description": "再送しても契約が一つだけ作られるようにするキー（トークンごと、"
                                                   "API_IDEMPOTENCY_KEY_HOURS 時間有効）。同じキー・同じ本文なら最初の"
                                                   "応答を返し（Idempotent-Replayed: true）、別の本文なら 422。"}],
                    "requestBody": {"required": True, "content": {
                        "multipart/form-data": {"schema": {"type": "object", "required": ["metadata"], "properties": {
                            "metadata": {"type": "string", "description": "ContractMetadata の JSON"},
                            "files": {"type": "array", "maxItems": 20,
                                      "items": {"type": "string", "contentMediaType": "application/pdf"}}}}},
                        "application/json": {"schema": {"$ref": "#/components/schemas/ContractMetadata"}}}},
                    "responses": {"201": _json("Contract", "作成した契約（Location ヘッダーあり）"),
                                  **_problems("400", "401", "403", "409", "415", "422")}},
            },
            "/search": {"get": _list_operation("契約の検索（/contracts の別名）", deprecated=True)},
            "/contracts/{contract_id}": {"get": {
                "summary": "契約の状態・署名者・履歴", "operationId": "getContract", "parameters": [CONTRACT_ID],
                "responses": {"200": _json("ContractWithEvents", "契約"), **_problems("401", "403", "404")}}},
            "/contracts/{contract_id}/approve": {"post": {
                "summary": "決裁の確認（承認者のトークン）", "operationId": "approveContract",
                "parameters": [CONTRACT_ID],
                "requestBody": {"content": {"application/json": {"schema": {
                    "type": "object", "required": ["approval_reference"],
                    "properties": {"approval_reference": {"type": "string", "maxLength": 100,
                                                          "description": "決裁番号・日付"}}}}}},
                "responses": {"200": _json("Contract", "契約"),
                              **_problems("400", "401", "403", "404", "409", "422")}}},
            "/contracts/{contract_id}/send": {"post": {
                "summary": "署名依頼の送信", "operationId": "sendContract", "parameters": [CONTRACT_ID],
                "responses": {"200": _json("Contract", "契約"), **_problems("401", "403", "404", "409", "422")}}},
            "/contracts/{contract_id}/documents/{n}": {"get": {
                "summary": "文書の現在の PDF", "operationId": "getContractDocument",
                "parameters": [CONTRACT_ID, {"name": "n", "in": "path", "required": True, "schema": INT}],
                "responses": {"200": {"description": "PDF", "content": {"application/pdf": {}}},
                              **_problems("401", "403", "404")}}},
            "/openapi.json": {"get": {
                "summary": "この文書", "operationId": "getOpenApi", "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}}}},
        },
        "webhooks": _webhooks(),
        "components": {
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "管理画面「API トークン」または flask --app app api-tokens create --user EMAIL"}},
            "responses": {f"Problem{code}": {"description": description, "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
                for code, description in PROBLEM_CODES.items()},
            "schemas": {
                "Problem": problem_schema,
                "ContractMetadata": _metadata_schema(),
                **_contract_schema(),
                "ContractPage": {"type": "object", "required": ["contracts", "total", "page", "per_page", "pages"],
                                 "properties": {"contracts": {"type": "array",
                                                              "items": {"$ref": "#/components/schemas/Contract"}},
                                                "total": INT, "page": INT, "per_page": INT, "pages": INT}},
                "WebhookEvent": _webhook_event_schema(),
            },
        },
    }
