"""/audit over HTTP: Japanese rows, every filter, paging, the Excel-safe CSV, hostile filters, access,
and the viewer's own use written to the log."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.audit.actions import AuditAction
from portal.audit.export import CSV_COLUMNS
from portal.audit.models import AuditEvent
from portal.audit.service import Actor, record
from portal.auth.models import Department, Role, StaffUser
from portal.contracts.models import Contract
from tests.conftest import reread
from tests.factories import login_as, make_contract, make_department, make_staff

UA = "Mozilla/5.0 (auditor test)"


@dataclass
class World:
    keiyaku: Department
    doboku: Department
    staff: StaffUser
    other: StaffUser
    auditor: StaffUser
    admin: StaffUser
    contract: Contract
    other_contract: Contract


@pytest.fixture
def world(app: Flask, session: Session) -> World:
    keiyaku = make_department(session, code="KEI", name="総務部 契約課")
    doboku = make_department(session, code="DORO", name="土木部 道路課")
    staff = make_staff(session, email="takahashi@pref.example.jp", name="髙橋 一郎", department=keiyaku)
    approver = make_staff(session, role=Role.APPROVER, email="okayama@pref.example.jp", name="岡山 花子",
                          department=keiyaku)
    other = make_staff(session, email="sato@pref.example.jp", name="佐藤 次郎", department=doboku)
    other_approver = make_staff(session, role=Role.APPROVER, email="kurashiki@pref.example.jp", name="倉敷 三郎",
                                department=doboku)
    auditor = make_staff(session, role=Role.AUDITOR, email="kansa@pref.example.jp", name="監査 太郎",
                         department=keiyaku)
    admin = make_staff(session, role=Role.ADMIN, email="admin@pref.example.jp", name="管理 花子", department=keiyaku)
    contract = make_contract(session, staff=staff, approver=approver)
    other_contract = make_contract(session, staff=other, approver=other_approver, business_name="道路補修")
    return World(keiyaku, doboku, staff, other, auditor, admin, contract, other_contract)


def _event(session: Session, actor: StaffUser | None, action: AuditAction, subject: object = None, *,
           at: datetime, ip: str = "192.0.2.10", **details: object) -> None:
    record(session, actor=Actor.staff(actor) if actor else Actor("system", "system"), action=action,
           subject=subject, ip=ip, user_agent=UA, now=at, **details)
    session.commit()


def _auditor(client: FlaskClient, world: World) -> FlaskClient:
    login_as(client, world.auditor)
    return client


def _rows(client: FlaskClient, query: str) -> str:
    response = client.get(f"/audit/?{query}", headers={"HX-Request": "true"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def test_rows_are_japanese_sentences_never_codes(client: FlaskClient, session: Session, world: World) -> None:
    _event(session, world.staff, AuditAction.CONTRACT_DOCUMENT_DOWNLOADED, world.contract,
           at=datetime(2026, 4, 1, 1, 2, 3, tzinfo=UTC), filename="契約書.pdf")
    _auditor(client, world)

    page = client.get("/audit/")
    html = page.get_data(as_text=True)

    assert page.status_code == 200
    assert f"髙橋 一郎 が 契約 {world.contract.number} の文書をダウンロードしました" in html
    assert "2026-04-01 10:02:03" in html  # stored in UTC, shown in JST
    assert "ファイル: 契約書.pdf" in html
    assert "担当者" in html
    assert "総務部 契約課" in html
    assert "192.0.2.10" in html
    for code in ("contract:document:download", "staff:contract:created"):
        assert code not in html.replace('value="contract:document:download"', "").replace(
            'value="staff:contract:created"', "")
    assert '<a href="/audit/">操作ログ</a>' in html  # the menu entry


def test_the_contract_page_history_uses_the_same_sentences(client: FlaskClient, session: Session,
                                                           world: World) -> None:
    login_as(client, world.staff)
    client.get(f"/contracts/{world.contract.id}")

    html = client.get(f"/contracts/{world.contract.id}").get_data(as_text=True)

    history = html.split("<h2>履歴</h2>", 1)[1]
    assert f"髙橋 一郎 が 契約 {world.contract.number} を作成しました" in history
    assert "staff:contract:created" not in history
    assert "を閲覧しました" not in history  # views are in /audit, not in every contract's timeline
    assert "全ての操作ログ" not in history  # the link to /audit is for auditors
    reread(session)
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == str(AuditAction.CONTRACT_VIEWED))) == 2


def test_auditors_reach_the_contracts_full_log_from_its_page(client: FlaskClient, world: World) -> None:
    _auditor(client, world)

    html = client.get(f"/contracts/{world.contract.id}").get_data(as_text=True)
    rows = _rows(client, f"contract={world.contract.number}")

    assert f'href="/audit/?contract={world.contract.number}"' in html
    assert f"監査 太郎 が 契約 {world.contract.number} を閲覧しました" in rows


T0 = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)  # 令和8年4月1日 12:00 JST


@pytest.fixture
def filtered(session: Session, world: World) -> World:
    """Five events, each told apart by its filename, for the filter cases."""
    _event(session, world.staff, AuditAction.CONTRACT_DOCUMENT_DOWNLOADED, world.contract, at=T0,
           filename="one.pdf")
    _event(session, world.other, AuditAction.CONTRACT_DOCUMENT_DOWNLOADED, world.other_contract,
           at=T0 + timedelta(days=40), ip="198.51.100.7", filename="two.pdf")
    _event(session, world.staff, AuditAction.CONTRACT_SIGNED, world.contract, at=T0 + timedelta(days=400),
           ip="2001:db8::5", filename="three.pdf")
    _event(session, world.admin, AuditAction.USER_UPDATED, world.other, at=T0 - timedelta(days=400),
           ip="192.0.2.99", filename="four.pdf")
    _event(session, world.other, AuditAction.LOGIN_SUCCEEDED, world.other, at=T0 + timedelta(days=1),
           ip="198.51.100.8", filename="five.pdf")
    return world


ALL = {"one", "two", "three", "four", "five"}


@pytest.mark.parametrize(("query", "expected"), [
    ("", ALL),
    ("person=髙橋", {"one", "three"}),
    ("person=高橋", set()),  # 髙 and 高 are different people's names
    ("person=髙橋一郎", {"one", "three"}),  # spaces do not matter
    ("person=SATO%40pref", {"two", "five"}),  # e-mail, any case
    ("person=%25", set()),  # LIKE wildcards are plain characters
    ("person=_", set()),
    ("contract=%25", set()),
    ("action=contract:document:download", {"one", "two"}),
    ("action=group:login", {"five"}),
    ("action=group:contract-read", {"one", "two"}),
    ("contract=KEI-", {"one", "three"}),
    ("contract=doro", {"two"}),
    ("department=DEPT_DORO", {"two", "five"}),  # the actor's or the contract's department
    ("from=令和8年4月1日&to=令和8年4月1日", {"one"}),
    ("from=R8.4&to=R8.5", {"one", "two", "five"}),
    ("from=令和9年", {"three"}),
    ("to=2025-12-31", {"four"}),
    ("ip=198.51.100.7", {"two"}),
    ("ip=198.51.100.", {"two", "five"}),
    ("ip=2001:db8::5", {"three"}),
    ("ip=2001:0db8:0:0::5", {"three"}),  # written another way, the same address
    ("person=髙橋&action=signer:contract:signed&from=令和9年1月", {"three"}),
])
def test_filters(client: FlaskClient, filtered: World, query: str, expected: set[str]) -> None:
    _auditor(client, filtered)
    query = query.replace("DEPT_DORO", str(filtered.doboku.id))

    html = _rows(client, query)

    shown = {name for name in ALL if f"ファイル: {name}.pdf" in html}
    assert shown == expected


def _link(html: str, rel: str) -> str:
    """The query of the page link rel="next" or rel="prev"."""
    href = html.split(f'rel="{rel}" href="', 1)[1].split('"', 1)[0]
    return href.replace("&amp;", "&").split("?", 1)[1]


def test_paging(client: FlaskClient, session: Session, world: World) -> None:
    for n in range(120):
        record(session, actor=Actor.staff(world.staff), action=AuditAction.CONTRACT_VIEWED, subject=world.contract,
               now=T0 + timedelta(minutes=n), filename=f"p{n:03d}.pdf")
    session.commit()
    _auditor(client, world)

    first = _rows(client, "action=staff:contract:viewed")
    last = _rows(client, "action=staff:contract:viewed&page=3")

    assert "<strong>120</strong> 件" in first
    assert "1 / 3 ページ" in first
    assert "p119.pdf" in first
    assert "p070.pdf" in first
    assert "p069.pdf" not in first
    assert 'rel="next"' in first
    assert "action=staff:contract:viewed&amp;page=2&amp;before=" in first
    second = _rows(client, _link(first, "next"))
    assert "2 / 3 ページ" in second
    assert "p069.pdf" in second
    assert "p020.pdf" in second
    assert "p070.pdf" not in second
    assert "p019.pdf" not in second
    assert _rows(client, _link(second, "next")) == last  # from the row, or by the page's number
    back = _rows(client, _link(second, "prev"))
    assert "p119.pdf" in back
    assert "p070.pdf" in back
    assert "p069.pdf" not in back
    assert "p019.pdf" in last
    assert "p000.pdf" in last
    assert "p020.pdf" not in last
    assert 'rel="next"' not in last
    assert 'rel="prev"' in last
    assert client.get("/audit/?page=0").status_code == 422
    assert "記録はありません" in _rows(client, "action=staff:contract:viewed&page=4")


def test_csv_is_excel_safe(client: FlaskClient, session: Session, world: World) -> None:
    hostile = make_staff(session, email="evil@pref.example.jp", name="=HYPERLINK(\"http://evil.example\",\"x\")",
                         department=world.keiyaku)
    _event(session, hostile, AuditAction.CONTRACT_DOCUMENT_DOWNLOADED, world.contract, at=T0,
           filename="+cmd|' /C calc'!A0.pdf")
    _event(session, world.staff, AuditAction.CONTRACT_SIGNED, world.contract, at=T0 + timedelta(hours=1))
    _auditor(client, world)

    response = client.get("/audit/export.csv?action=group:contract-read")
    body = response.get_data()

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == CSV_COLUMNS
    assert len(rows) == 2  # the filter applies: the signature is not exported
    row = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert row["日時（日本時間）"] == "2026-04-01 12:00:00"
    assert row["操作者"] == "'=HYPERLINK(\"http://evil.example\",\"x\")"
    assert row["内容"].startswith("'=HYPERLINK(")
    assert row["内容"].endswith(f"が 契約 {world.contract.number} の文書をダウンロードしました")
    assert row["詳細"] == "ファイル: +cmd|' /C calc'!A0.pdf"  # starts with ファイル: — not a formula
    assert row["役割"] == "担当者"
    assert row["所属"] == "総務部 契約課"
    assert row["ユーザーエージェント"] == UA
    assert not any(cell.startswith(("=", "+", "-", "@")) for line in rows[1:] for cell in line)


@pytest.mark.parametrize(("query", "message"), [
    ("person=%E9%AB%99%00%1b[31m", "制御文字"),
    ("person=" + "あ" * 5000, "100文字以内"),
    ("contract=" + "K" * 100_000, "40文字以内"),
    ("ip=<script>alert(1)</script>", "IP アドレスは"),
    ("ip=%25", "IP アドレスは"),
    ("ip=192.0.2.1%0d%0aSet-Cookie:x", "制御文字"),
    ("action=staff:session:login%27--", "一覧から選んで"),
    ("action=<b>x</b>", "一覧から選んで"),
    ("department=1%20OR%201=1", "一覧から選んで"),
    ("department=999999999999999999999999", "一覧から選んで"),
    ("from=<img src=x onerror=alert(1)>", "日付として読み取れません"),
    ("from=令和99年13月", "という日付はありません"),
    ("from=2026-05-01&to=2026-04-01", "より後の日付"),
    ("page=-1", "ページの番号"),
    ("page=2&before=1%20OR%201=1", "ページの番号"),
    ("page=2&after=" + "9" * 30, "ページの番号"),
    ("page=99999999999999999999", "ページの番号"),
])
def test_hostile_filters_are_refused_in_japanese(client: FlaskClient, session: Session, world: World,
                                                 query: str, message: str) -> None:
    _auditor(client, world)

    page = client.get(f"/audit/?{query}")
    export = client.get(f"/audit/export.csv?{query}")

    html = page.get_data(as_text=True)
    assert page.status_code == 422
    assert message in html
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "<b>x</b>" not in html
    assert export.status_code == 422
    assert message in export.get_data(as_text=True)
    assert export.mimetype == "text/html"
    reread(session)
    assert session.scalar(select(func.count()).select_from(AuditEvent)
                          .where(AuditEvent.action == str(AuditAction.AUDIT_EXPORTED))) == 0


def test_markup_in_logged_values_is_shown_as_text(client: FlaskClient, session: Session, world: World) -> None:
    _event(session, world.staff, AuditAction.CONTRACT_CANCELLED, world.contract, at=T0,
           reason="<script>alert('x')</script>")
    _auditor(client, world)

    html = _rows(client, "")

    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html


@pytest.mark.parametrize("role", [Role.STAFF, Role.APPROVER])
def test_staff_are_refused(client: FlaskClient, session: Session, world: World, role: Role) -> None:
    user = make_staff(session, role=role, email=f"{role}@pref.example.jp", department=world.keiyaku)
    login_as(client, user)

    for path in ("/audit/", "/audit/export.csv"):
        response = client.get(path)
        assert response.status_code == 403
        assert "error-page" in response.get_data(as_text=True)
    assert '<a href="/audit/">' not in client.get("/contracts/").get_data(as_text=True)


def test_anonymous_is_sent_to_login(client: FlaskClient, world: World) -> None:
    for path in ("/audit/", "/audit/export.csv"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("who", ["auditor", "admin"])
def test_the_viewers_own_use_is_logged(client: FlaskClient, session: Session, world: World, who: str) -> None:
    user = getattr(world, who)
    login_as(client, user)

    assert client.get("/audit/?person=髙橋&from=令和8年4月", headers={"User-Agent": UA},
                      environ_base={"REMOTE_ADDR": "203.0.113.5"}).status_code == 200
    assert client.get("/audit/export.csv?action=group:login", headers={"User-Agent": UA},
                      environ_base={"REMOTE_ADDR": "203.0.113.5"}).status_code == 200

    reread(session)
    viewed = session.scalars(select(AuditEvent).where(AuditEvent.action == str(AuditAction.AUDIT_VIEWED))).one()
    exported = session.scalars(select(AuditEvent).where(AuditEvent.action == str(AuditAction.AUDIT_EXPORTED))).one()
    for event in (viewed, exported):
        assert event.actor_user_id == user.id
        assert event.ip == "203.0.113.5"
        assert event.user_agent == UA
        assert event.details["actor_role"] == str(user.role)
        assert event.details["actor_department"] == "総務部 契約課"
    assert viewed.details["criteria"] == {"person": "髙橋", "from": "2026-04-01"}
    assert exported.details["criteria"] == {"action": "group:login"}
    assert exported.details["format"] == "csv"


def test_system_commands_and_backups_read_by_name(client: FlaskClient, session: Session, world: World) -> None:
    record(session, actor=Actor("system", "flask backup"), action=AuditAction.BACKUP_RESTORED,
           subject=("backup", "20261202-030000"), now=T0)
    record(session, actor=Actor("system", "system"), action=AuditAction.LOGIN_LOCKED, subject=world.staff, now=T0)
    session.commit()
    _auditor(client, world)

    html = _rows(client, "")

    assert "システム（flask backup） がバックアップ 「20261202-030000」 から復元しました" in html
    assert "髙橋 一郎 さん のアカウントがロックされました" in html
