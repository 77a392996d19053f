"""Whom a vendor should call: the contract's department, else the portal's general contact.

A vendor arrives from a mail's link (signing page, download page) and meets a page, a lock or an
error; each of these shows the department that sent the contract, with its phone and mail
(Department.contact_phone / contact_email), falling back to CONTACT_* for what a department left
empty. A view that has resolved the link calls remember(); the error pages of the same request then
know whom to name even when the failure came later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from flask import Flask, current_app, g, has_request_context, url_for


class HasContact(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def contact_phone(self) -> str: ...
    @property
    def contact_email(self) -> str: ...


@dataclass(frozen=True)
class DepartmentContact:
    """A department's name and contact, copied out of the session (an error page may render after a rollback)."""

    name: str
    contact_phone: str
    contact_email: str
    code: str = ""  # /help?department=<code> shows this contact


def snapshot(department: HasContact | None) -> DepartmentContact | None:
    if department is None or isinstance(department, DepartmentContact):
        return department
    return DepartmentContact(department.name, department.contact_phone or "", department.contact_email or "",
                             str(getattr(department, "code", "") or ""))


@dataclass(frozen=True)
class Contact:
    """What a page shows under 「お問い合わせ先」."""

    name: str  # the department's name; empty for the general contact
    phone: str
    email: str
    hours: str
    form_url: str

    @property
    def is_empty(self) -> bool:
        return not (self.phone or self.email or self.form_url)


def contact_for(department: HasContact | None, config: Mapping[str, Any]) -> Contact:
    """The department's contact, each empty field filled from the portal's CONTACT_* settings."""
    return Contact(
        name=department.name if department is not None else "",
        phone=(department.contact_phone if department is not None else "") or config["CONTACT_PHONE"],
        email=(department.contact_email if department is not None else "") or config["CONTACT_EMAIL"],
        hours=config["CONTACT_HOURS"],
        form_url=config["CONTACT_FORM_URL"],
    )


def remember(department: HasContact | None) -> None:
    """This request concerns `department`'s contract: its pages and error pages name it."""
    g.contact_department = snapshot(department)


def remembered() -> HasContact | None:
    return g.get("contact_department") if has_request_context() else None


def init_app(app: Flask) -> None:
    @app.context_processor
    def contact_helpers() -> dict[str, Any]:
        def department_contact(department: HasContact | None = None) -> Contact:
            return contact_for(department or remembered(), current_app.config)

        def help_url() -> str:
            department = remembered()
            code = getattr(department, "code", "") if department is not None else ""
            return url_for("home.help", department=code) if code else url_for("home.help")

        return {"department_contact": department_contact, "contact_department": remembered(), "help_url": help_url}
