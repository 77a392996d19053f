"""Reading the body of POST /api/v1/contracts: every key checked for type, length and control
characters, all problems reported at once (422 with `errors`), nothing reaching the service unchecked."""

from __future__ import annotations

from datetime import date
from typing import Any

from portal.api.problems import ApiProblem
from portal.auth.models import Department, StaffUser
from portal.contracts.models import PartyRole
from portal.contracts.service import ConsentInput, ContractInput, SignerInput
from portal.text import CONTROL_CHARACTERS_MESSAGE, has_control_characters
from portal.types import MAX_YEN

MAX_SIGNERS = 10
TEXT_LIMITS = {"business_name": 200, "contract_type": 50, "counterparty_name": 200, "department": 100,
               "access_code": 100, "signer_override_reason": 500, "counterparty_override_reason": 500}
SIGNER_LIMITS = {"organization": 200, "title": 100, "name": 100, "email": 254, "user_email": 254}
DATES = ("transaction_date", "term_start", "term_end", "planned_conclusion_date")
REQUIRED = ("business_name", "contract_type", "counterparty_name", "amount", "transaction_date",
            "planned_conclusion_date", "signers")
FLAGS = ("auto_renewal", "paper_required_by_law", "council_approval_required")
KNOWN = {*TEXT_LIMITS, *DATES, *REQUIRED, *FLAGS, "tax_amount", "consent", "counterparty_id"}


def _text(value: Any, key: str, limit: int, errors: dict[str, str]) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        errors[key] = f"{key} は文字列で指定してください。"
        return ""
    if len(value) > limit:
        errors[key] = f"{key} は{limit}文字以内で指定してください（{len(value)}文字あります）。"
        return ""
    if has_control_characters(value):
        errors[key] = f"{key} に{CONTROL_CHARACTERS_MESSAGE}"
        return ""
    return value


def _yen(value: Any, key: str, errors: dict[str, str], *, default: int | None = None) -> int:
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        errors[key] = f"{key} は整数（円）で指定してください。"
        return 0
    if not 0 <= value <= MAX_YEN:
        errors[key] = f"{key} は0以上{MAX_YEN:,}以下の整数で指定してください。"
        return 0
    return value


def _date(value: Any, key: str, errors: dict[str, str]) -> date | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) != 10:
        errors[key] = f"{key} は YYYY-MM-DD 形式の日付で指定してください。"
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors[key] = f"{key} は YYYY-MM-DD 形式の日付で指定してください（{value} は日付として読めません）。"
        return None


def _flag(value: Any, key: str, errors: dict[str, str]) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        errors[key] = f"{key} は true または false で指定してください。"
        return False
    return value


def _signers(value: Any, errors: dict[str, str]) -> list[SignerInput]:
    if not isinstance(value, list):
        errors["signers"] = "signers は署名者（オブジェクト）の配列で指定してください。"
        return []
    if len(value) > MAX_SIGNERS:
        errors["signers"] = f"署名者は{MAX_SIGNERS}人までです。"
        return []
    signers = []
    for i, raw in enumerate(value):
        key = f"signers[{i}]"
        if not isinstance(raw, dict):
            errors[key] = f"{key} は role などを持つオブジェクトで指定してください。"
            continue
        if unknown := sorted(set(raw) - {"role", *SIGNER_LIMITS}):
            errors[key] = f"{key} に不明な項目があります: {', '.join(str(u)[:40] for u in unknown[:5])}"
            continue
        role = str(raw.get("role") or "")
        if role not in PartyRole._value2member_map_:
            errors[f"{key}.role"] = f"{key}.role は counterparty または agency です。"
            continue
        texts = {name: _text(raw.get(name), f"{key}.{name}", limit, errors) for name, limit in SIGNER_LIMITS.items()}
        signers.append(SignerInput(role=PartyRole(role), **texts))
    return signers


def contract_input(metadata: Any, user: StaffUser) -> ContractInput:
    """The service's input from the request's metadata object. Raises ApiProblem (422, or 403 for
    another department: the API creates contracts only in the caller's own department, like the form)."""
    if not isinstance(metadata, dict):
        raise ApiProblem("契約の内容は JSON オブジェクトで指定してください。", 422, "invalid_metadata")
    errors: dict[str, str] = {}
    for key in sorted(set(metadata) - KNOWN)[:10]:
        errors[str(key)[:40]] = f"不明な項目です: {str(key)[:40]}"
    counterparty_id = _counterparty_id(metadata.get("counterparty_id"), errors)
    for key in REQUIRED:
        if metadata.get(key) in (None, "") and not (key == "counterparty_name" and counterparty_id is not None):
            errors.setdefault(key, f"{key} は必須です。")
    texts = {key: _text(metadata.get(key), key, limit, errors) for key, limit in TEXT_LIMITS.items()}
    amount = _yen(metadata.get("amount"), "amount", errors) if "amount" not in errors else 0
    tax_amount = _yen(metadata.get("tax_amount"), "tax_amount", errors, default=0)
    dates = {key: _date(metadata.get(key), key, errors) for key in DATES}
    flags = {key: _flag(metadata.get(key), key, errors) for key in FLAGS}
    signers = _signers(metadata.get("signers"), errors) if "signers" not in errors else []
    consent = _consent(metadata.get("consent"), errors)
    if errors:
        raise ApiProblem("契約の内容に誤りがあります: " + " ".join(errors.values()), 422, "invalid_metadata",
                         errors=errors)
    department = _own_department(texts.pop("department"), user)
    transaction_date, planned = dates["transaction_date"], dates["planned_conclusion_date"]
    assert transaction_date is not None  # REQUIRED
    assert planned is not None
    return ContractInput(
        business_name=texts["business_name"], department=department, counterparty_name=texts["counterparty_name"],
        amount=amount, tax_amount=tax_amount, transaction_date=transaction_date, term_start=dates["term_start"],
        term_end=dates["term_end"], planned_conclusion_date=planned, access_code=texts["access_code"],
        signers=signers, auto_renewal=flags["auto_renewal"], paper_required_by_law=flags["paper_required_by_law"],
        council_approval_required=flags["council_approval_required"], contract_type=texts["contract_type"],
        consent=consent, counterparty_id=counterparty_id, signer_override_reason=texts["signer_override_reason"],
        counterparty_override_reason=texts["counterparty_override_reason"])


def _counterparty_id(value: Any, errors: dict[str, str]) -> int | None:
    """The registered 取引先 (R10), as on the staff form; absent: counterparty_name finds or registers it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        errors["counterparty_id"] = "counterparty_id は取引先の番号（正の整数）で指定してください。"
        return None
    return value


def _consent(value: Any, errors: dict[str, str]) -> ConsentInput | None:
    """{"by": "山田 太郎（代表取締役）", "on": "2026-11-20", "method": "承諾書（書面）"} or absent."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"by", "on", "method"}:
        errors["consent"] = "consent は by・on・method を持つオブジェクトで指定してください。"
        return None
    by = _text(value.get("by"), "consent.by", 200, errors)
    method = _text(value.get("method"), "consent.method", 100, errors)
    on = _date(value.get("on"), "consent.on", errors)
    if on is None:
        errors.setdefault("consent.on", "consent.on は必須です。")
        return None
    return ConsentInput(by=by, on=on, method=method)


def _own_department(wanted: str, user: StaffUser) -> Department:
    wanted = wanted.strip()
    department = user.department
    if wanted and wanted not in (department.code, department.name):
        raise ApiProblem(f"所属 {wanted} の契約は作成できません。契約はトークンの職員の所属"
                         f"（{department.code} {department.name}）で作成されます。", 403, "other_department",
                         errors={"department": "トークンの職員の所属以外は指定できません。"})
    return department
