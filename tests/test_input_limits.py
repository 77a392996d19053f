"""Every text a person can type has a maximum length, said in Japanese when it is exceeded; numbers have
bounds the database can hold. A new form field without a limit fails here."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

import pytest
from flask_wtf import FlaskForm
from wtforms import IntegerField, StringField
from wtforms.validators import NumberRange

import portal
from portal.types import MAX_YEN
from tests.conftest import post_form
from tests.factories import login_as, make_staff, register_counterparty


def _forms() -> list[type[FlaskForm]]:
    for module in pkgutil.walk_packages(portal.__path__, "portal."):
        importlib.import_module(module.name)

    def below(cls: type) -> Iterator[type]:
        for sub in cls.__subclasses__():
            yield sub
            yield from below(sub)

    return sorted({cls for cls in below(FlaskForm) if cls.__module__.startswith("portal.")},
                  key=lambda cls: f"{cls.__module__}.{cls.__name__}")


def test_every_text_field_of_every_form_has_a_limit_in_japanese(app):
    missing, english = [], []
    with app.test_request_context():
        for form_cls in _forms():
            form = form_cls(meta={"csrf": False})
            for field in form:
                if not isinstance(field, StringField):
                    continue
                limits = [v for v in field.validators if getattr(v, "max", -1) is not None
                          and getattr(v, "max", -1) >= 0 and type(v).__name__ != "NumberRange"]
                name = f"{form_cls.__module__}.{form_cls.__name__}.{field.name}"
                if not limits:
                    missing.append(name)
                    continue
                field.data = "あ" * (max(v.max for v in limits) + 1)
                field.raw_data = [field.data]
                field.validate(form)
                if not field.errors or not any("文字以内" in str(error) for error in field.errors):
                    english.append(f"{name}: {field.errors}")
    assert not missing, f"text fields without a maximum length: {missing}"
    assert not english, f"over-long input not refused in Japanese: {english}"


def test_every_amount_field_is_bounded(app):
    unbounded = []
    with app.test_request_context():
        for form_cls in _forms():
            for field in form_cls(meta={"csrf": False}):
                if isinstance(field, IntegerField) and not any(
                        isinstance(v, NumberRange) and v.max is not None for v in field.validators):
                    unbounded.append(f"{form_cls.__name__}.{field.name}")
    assert not unbounded


@pytest.mark.parametrize("amount", [str(MAX_YEN + 1), "9" * 40])
def test_a_huge_amount_is_refused_in_japanese_and_nothing_is_created(client, session, amount):
    from sqlalchemy import func, select

    from portal.contracts.models import Contract

    staff = make_staff(session)
    login_as(client, staff)
    response = post_form(client, "/contracts/new", {
        "business_name": "道路清掃業務委託", "contract_type": "委託",
        "counterparty_id": str(register_counterparty(session).id), "amount": amount,
        "tax_amount": "0", "transaction_date": "2026-12-01", "planned_conclusion_date": "2026-12-20",
        "signer_name": "山田 太郎", "signer_email": "yamada@keiyaku-shoji.co.jp"})
    assert response.status_code == 422
    assert "以下の金額（円）を入力してください。" in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Contract)) == 0


def test_an_over_long_search_text_is_refused_in_japanese(client, session):
    login_as(client, make_staff(session))
    response = client.get("/search/?counterparty=" + "ア" * 201)
    assert response.status_code in (200, 422)
    assert "取引先は200文字以内で入力してください。" in response.get_data(as_text=True)
