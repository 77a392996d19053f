"""Tokens and request bodies shared by the API tests."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

from flask import Flask

from tests.contracts.fixtures import today


def token_for(app: Flask, email: str, *extra: str) -> str:
    """A token made by the CLI (`flask api-tokens create`); the last line of its output."""
    result = app.test_cli_runner().invoke(args=["api-tokens", "create", "--user", email, *extra])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def metadata(world: Any, **overrides: Any) -> dict[str, Any]:
    data = {
        "business_name": "道路清掃業務委託", "contract_type": "委託", "department": "KEI",
        "counterparty_name": "株式会社けいやく商事",
        "amount": 550000, "tax_amount": 50000, "transaction_date": today().isoformat(),
        "term_start": today().isoformat(), "term_end": (today() + timedelta(days=180)).isoformat(),
        "planned_conclusion_date": (today() + timedelta(days=7)).isoformat(),
        "signers": [
            {"role": "counterparty", "organization": "株式会社けいやく商事", "title": "代表取締役", "name": "山田 太郎",
             "email": "yamada@keiyaku-shoji.co.jp"},
            {"role": "agency", "user_email": world.approver.email},
        ],
    }
    data.update(overrides)
    return data


def multipart(meta: Any, *files: bytes) -> dict[str, Any]:
    raw = meta if isinstance(meta, str) else json.dumps(meta)
    return {"metadata": raw, "files": [(io.BytesIO(f), f"doc{i}.pdf") for i, f in enumerate(files)]}


def assert_problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """An RFC 9457 answer with a Japanese detail."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["status"] == status
    assert body["type"].startswith("urn:keiyaku-portal:problem:")
    assert body["title"]
    assert any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in body["detail"]), body["detail"]
    if code:
        assert body["code"] == code, body
    return body
