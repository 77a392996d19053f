"""A vendor who arrives from a mail's link sees whom to call: the department's phone and mail, on the
signing page and on the error pages of that link."""

from __future__ import annotations

from typing import Any

PHONE = "086-226-7470"
EMAIL = "keiyaku-ka@pref.example.jp"
HTMX = {"HX-Request": "true"}


def _with_contact(world: Any) -> None:
    world.department.contact_phone = PHONE
    world.department.contact_email = EMAIL
    world.session.commit()


def test_the_signing_page_shows_the_departments_phone_and_mail(world: Any) -> None:
    _with_contact(world)
    world.sent_contract()

    html = world.signer_client.get(world.signing_link()).get_data(as_text=True)

    assert "お問い合わせ先" in html
    assert PHONE in html
    assert 'href="tel:0862267470"' in html
    assert f"mailto:{EMAIL}" in html
    assert "/help?department=KEI" in html  # 困ったときは names the same department
    for step in ("confirm", "decline"):
        assert PHONE in world.signer_client.get(f"{world.signing_link()}/{step}").get_data(as_text=True), step


def test_a_404_inside_a_signing_link_says_what_to_do_and_whom_to_call(world: Any) -> None:
    _with_contact(world)
    world.sent_contract()

    response = world.signer_client.get(f"{world.signing_link()}/documents/999999/original")

    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert PHONE in html
    assert "総務部 契約課" in html
    assert "（404）" not in html


def test_an_unknown_signing_link_explains_and_gives_the_general_contact(world: Any) -> None:
    _with_contact(world)

    response = world.signer_client.get("/s/" + "z" * 43)

    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "リンクの有効期限が切れたか、新しいリンクが送られた可能性があります" in html
    assert "担当課にお問い合わせください" in html
    assert "086-000-0000" in html  # CONTACT_PHONE: the link names no department
    assert PHONE not in html


def test_an_htmx_request_inside_a_link_gets_the_contact_in_its_partial(world: Any) -> None:
    _with_contact(world)
    world.sent_contract()

    response = world.signer_client.get(f"{world.signing_link()}/documents/999999/original", headers=HTMX)

    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "<html" not in html
    assert "data-error-message" in html
    assert PHONE in html
