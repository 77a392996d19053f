"""Plain factory functions for test data, and login through the real two-step form."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pyotp
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from portal import clock
from portal.auth import passwords, totp
from portal.auth.models import Department, Role, StaffUser
from portal.clock import JST
from portal.contracts.models import Contract, PartyRole

PASSWORD = "correct horse battery"


def make_department(session: Session, code: str = "KEI", name: str = "総務部 契約課") -> Department:
    department = Department(code=code, name=name, kind="本庁", created_at=clock.now())
    session.add(department)
    session.flush()
    return department


def make_staff(
    session: Session,
    *,
    role: Role = Role.STAFF,
    email: str = "staff@pref.example.jp",
    name: str = "髙橋 一郎",
    department: Department | None = None,
    enrolled: bool = True,
    **fields: Any,
) -> StaffUser:
    """A staff user with PASSWORD; when enrolled, `user.totp_secret` holds the TOTP secret for tests."""
    with session.info["app"].app_context():
        return _make_staff(session, role=role, email=email, name=name, department=department,
                           enrolled=enrolled, **fields)


def _make_staff(session: Session, *, role: Role, email: str, name: str, department: Department | None,
                enrolled: bool, **fields: Any) -> StaffUser:
    secret = totp.new_secret()
    user = StaffUser(
        email=email,
        name=name,
        role=role,
        department=department or make_department(session, code=f"D{abs(hash(email)) % 10000}"),
        password_hash=passwords.hash_secret(PASSWORD),
        totp_secret_sealed=totp.seal_secret(secret) if enrolled else None,
        mfa_enrolled_at=clock.now() if enrolled else None,
        created_at=clock.now(),
        **fields,
    )
    session.add(user)
    session.commit()
    user.totp_secret = secret  # type: ignore[attr-defined]
    return user


def totp_code(user: StaffUser) -> str:
    return pyotp.TOTP(user.totp_secret).at(clock.now())  # type: ignore[attr-defined]


def login_as(client: FlaskClient, user: StaffUser) -> None:
    """Log in through both steps of the real login form; asserts it worked."""
    from tests.conftest import post_form

    response = post_form(client, "/login", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)
    response = post_form(client, "/login/verify", {"code": totp_code(user)})
    assert response.status_code == 302, response.get_data(as_text=True)


def register_counterparty(session: Session, name: str = "株式会社けいやく商事", *, title: str = "代表取締役",
                          signer: str = "山田 太郎", email: str = "yamada@keiyaku-shoji.co.jp") -> Any:
    """A 取引先 with the 契約締結権限者 an accepted 利用申出書 registers (R10); committed."""
    from portal.counterparties import service as counterparties

    with session.info["app"].app_context():
        now = clock.now()
        counterparty = counterparties.upsert_counterparty(session, name=name, now=now)
        if counterparty.current_authority is None:
            counterparties.set_signing_authority(session, counterparty, title=title, name=signer, email=email,
                                                 source="usage_request", now=now)
        session.commit()
    return counterparty


def make_contract(
    session: Session,
    *,
    staff: StaffUser,
    approver: StaffUser,
    business_name: str = "庁舎清掃業務委託",
    counterparty: str = "株式会社けいやく商事",
    amount: int = 1_100_000,
    signer_name: str = "山田 太郎",
    signer_email: str = "yamada@keiyaku-shoji.co.jp",
    agency_first: bool = False,
    documents: dict[str, bytes] | None = None,
    contract_type: str = "委託",
) -> Contract:
    """A 下書き of staff's department made by the real services (numbered, audited), committed.

    The counterparty's authority signs first, then `approver` (or the other way round with
    agency_first); `documents` (filename → PDF bytes) are attached as `staff`'s uploads.
    """
    from portal.contracts import service as contracts

    today = clock.now().astimezone(JST).date()
    counterparty_signer = contracts.SignerInput(role=PartyRole.COUNTERPARTY, organization=counterparty,
                                                title="代表取締役", name=signer_name, email=signer_email)
    agency_signer = contracts.SignerInput(role=PartyRole.AGENCY, user_email=approver.email)
    data = contracts.ContractInput(
        business_name=business_name, department=staff.department, counterparty_name=counterparty,
        amount=amount, tax_amount=amount // 11, transaction_date=today, term_start=today,
        term_end=today + timedelta(days=180), planned_conclusion_date=today + timedelta(days=14),
        signers=[agency_signer, counterparty_signer] if agency_first else [counterparty_signer, agency_signer],
        contract_type=contract_type,
    )
    with session.info["app"].app_context():
        now = clock.now()
        contract = contracts.create_draft(session, data, actor=staff, now=now)
        for filename, pdf in (documents or {}).items():
            contracts.attach_document(session, contract, filename=filename, data=pdf, actor=staff, now=now)
        session.commit()
    return contract
