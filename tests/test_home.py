from portal.auth.models import Role
from tests.factories import login_as, make_staff


def test_landing_page_for_anonymous_visitors(client):
    html = client.get("/").get_data(as_text=True)
    for text in ("電子契約利用申出書を提出する", "署名済みPDFを検証する", "職員ログイン", "困ったときは"):
        assert text in html


def test_help_page_shows_configured_contact(app, client):
    app.config.update(CONTACT_PHONE="086-000-0000", CONTACT_EMAIL="keiyaku@pref.example.jp",
                      CONTACT_FORM_URL="https://www.pref.example.jp/form")
    html = client.get("/help").get_data(as_text=True)
    for text in ("086-000-0000", "keiyaku@pref.example.jp", "https://www.pref.example.jp/form", "立会人型"):
        assert text in html


def test_menu_follows_the_role(client, session):
    login_as(client, make_staff(session, role=Role.AUDITOR))
    html = client.get("/").get_data(as_text=True)
    assert "検索" in html
    assert "ユーザー管理" not in html
