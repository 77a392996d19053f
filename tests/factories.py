"""Plain factory functions for test data, and login through the real two-step form."""

from __future__ import annotations

from typing import Any

import pyotp
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from portal import clock
from portal.auth import passwords, totp
from portal.auth.models import Department, Role, StaffUser

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
