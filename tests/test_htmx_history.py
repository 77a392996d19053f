"""htmx: a partial for an htmx swap, the full page for a history restore and for plain requests;
error pages switch the same way, and every such answer says `Vary: HX-Request`."""

from __future__ import annotations

from portal.auth.models import Role
from tests.factories import login_as, make_staff

HTMX = {"HX-Request": "true"}
RESTORE = {"HX-Request": "true", "HX-History-Restore-Request": "true"}


def _has_menu(html: str) -> bool:
    return "<header" in html and "</html>" in html


def test_history_restore_gets_the_full_page(client, session):
    login_as(client, make_staff(session, role=Role.STAFF))
    partial = client.get("/contracts/?status=draft", headers=HTMX)
    assert partial.status_code == 200
    assert not _has_menu(partial.get_data(as_text=True))
    restored = client.get("/contracts/?status=draft", headers=RESTORE)
    assert restored.status_code == 200
    assert _has_menu(restored.get_data(as_text=True)), "the back button would show a page without header or menu"
    assert "HX-Request" in restored.headers["Vary"]
    plain = client.get("/contracts/?status=draft")
    assert _has_menu(plain.get_data(as_text=True))


def test_errors_switch_on_hx_request_with_vary(client, session):
    login_as(client, make_staff(session, role=Role.STAFF))
    inline = client.get("/contracts/999999", headers=HTMX)
    assert inline.status_code == 404
    assert not _has_menu(inline.get_data(as_text=True))
    assert "契約が見つかりません" in inline.get_data(as_text=True)
    page = client.get("/contracts/999999")
    assert page.status_code == 404
    assert _has_menu(page.get_data(as_text=True))
    restored = client.get("/contracts/999999", headers=RESTORE)
    assert _has_menu(restored.get_data(as_text=True))
    for response in (inline, page, restored):
        assert "HX-Request" in response.headers.get("Vary", "")
