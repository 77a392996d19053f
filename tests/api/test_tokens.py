"""API tokens managed: listed with owner, dates and scope; revoked; expiring; read-only; shown once."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import select

from portal import clock
from portal.audit.models import AuditEvent
from portal.auth.models import ApiToken, ApiTokenScope, Role
from portal.clock import JST
from portal.tokens import hash_token
from tests.api.helpers import assert_problem, bearer, metadata, token_for
from tests.conftest import csrf_from, post_form
from tests.factories import login_as, make_staff


def _rows(world) -> list[ApiToken]:
    world.refresh()
    world.session.expire_all()
    return list(world.session.scalars(select(ApiToken).order_by(ApiToken.id)))


def test_last_used_is_recorded_on_reads_too(app, client, world):
    token = token_for(app, world.staff.email)
    [row] = _rows(world)
    assert row.last_used_at is None
    assert client.get("/api/v1/contracts", headers=bearer(token)).status_code == 200
    [row] = _rows(world)
    assert row.last_used_at is not None
    first_use = row.last_used_at
    assert client.get("/api/v1/contracts/424242", headers=bearer(token)).status_code == 404  # a failed read counts
    [row] = _rows(world)
    assert row.last_used_at > first_use


def test_default_expiry_is_a_year_and_an_expired_token_is_refused(app, client, world):
    token = token_for(app, world.staff.email)
    [row] = _rows(world)
    assert timedelta(days=364) < row.expires_at - row.created_at <= timedelta(days=365)
    clock.freeze(row.expires_at + timedelta(seconds=1))
    response = client.get("/api/v1/contracts", headers=bearer(token))
    body = assert_problem(response, 401, "invalid_token")
    assert "有効期限" in body["detail"]
    [row] = _rows(world)
    assert row.last_used_at is None  # a refused token is not "used"


def test_cli_lists_owner_dates_and_scope_and_revokes(app, client, world):
    runner = app.test_cli_runner()
    writer = token_for(app, world.staff.email, "--label", "財務会計システム", "--expires", "2099-03-31")
    reader = token_for(app, world.approver.email, "--read-only")
    client.get("/api/v1/contracts", headers=bearer(writer))
    listing = runner.invoke(args=["api-tokens", "list"])
    assert listing.exit_code == 0, listing.output
    lines = listing.output.strip().splitlines()
    assert lines[0].split("\t") == ["ID", "職員", "用途", "権限", "作成", "最終利用", "有効期限", "状態"]
    rows = {line.split("\t")[1]: line.split("\t") for line in lines[1:]}
    assert rows[world.staff.email][2:4] == ["財務会計システム", "読み書き"]
    assert rows[world.staff.email][5] != "-"  # last used
    assert rows[world.staff.email][6] == "2099-04-01 00:00"  # to the end of the day given (JST)
    assert rows[world.approver.email][3] == "読み取り専用"
    assert writer not in listing.output
    assert reader not in listing.output

    token_id = rows[world.staff.email][0]
    revoked = runner.invoke(args=["api-tokens", "revoke", token_id])
    assert revoked.exit_code == 0, revoked.output
    assert_problem(client.get("/api/v1/contracts", headers=bearer(writer)), 401, "invalid_token")
    assert runner.invoke(args=["api-tokens", "revoke", token_id]).exit_code == 1
    assert "失効" in runner.invoke(args=["api-tokens", "list"]).output
    assert client.get("/api/v1/contracts", headers=bearer(reader)).status_code == 200


def test_cli_refuses_unknown_users_and_control_characters(app, world):
    runner = app.test_cli_runner()
    unknown = runner.invoke(args=["api-tokens", "create", "--user", "nobody@pref.example.jp"])
    assert unknown.exit_code == 1
    assert "見つかりません" in unknown.output
    bad_label = runner.invoke(args=["api-tokens", "create", "--user", world.staff.email, "--label", "a\x1b[31mb"])
    assert bad_label.exit_code == 1
    past = runner.invoke(args=["api-tokens", "create", "--user", world.staff.email, "--expires", "2000-01-01"])
    assert past.exit_code == 1
    assert _rows(world) == []


def test_a_read_only_token_reads_but_cannot_change(app, client, world):
    token = token_for(app, world.staff.email, "--read-only")
    assert client.get("/api/v1/contracts", headers=bearer(token)).status_code == 200
    refused = client.post("/api/v1/contracts", json=metadata(world), headers=bearer(token))
    assert_problem(refused, 403, "read_only_token")
    approver_reader = token_for(app, world.approver.email, "--read-only")
    assert_problem(client.post("/api/v1/contracts/1/approve", json={"approval_reference": "x"},
                               headers=bearer(approver_reader)), 403, "read_only_token")


def test_admin_page_creates_a_token_shown_once_lists_and_revokes(app, client, world):
    admin = make_staff(world.session, role=Role.ADMIN, email="kanri@pref.example.jp", department=world.department)
    login_as(client, admin)
    page = client.get("/admin/api-tokens")
    assert page.status_code == 200
    assert "トークンはありません" in page.get_data(as_text=True)
    expires = (clock.now() + timedelta(days=30)).date().isoformat()
    created = post_form(client, "/admin/api-tokens", {"user_email": world.staff.email, "label": "文書管理",
                                                       "scope": "read", "expires_on": expires})
    assert created.status_code == 200, created.get_data(as_text=True)
    html = created.get_data(as_text=True)
    [row] = _rows(world)
    shown = html.split('<code class="secret">')[1].split("</code>")[0]
    assert row.token_hash == hash_token(shown)
    assert row.scope is ApiTokenScope.READ
    assert row.created_by_id == admin.id
    assert row.expires_at == datetime.combine(date.fromisoformat(expires) + timedelta(days=1), time(), JST)
    listing = client.get("/admin/api-tokens").get_data(as_text=True)
    assert shown not in listing  # never shown again
    assert "文書管理" in listing
    assert "読み取り専用" in listing
    assert "未使用" in listing
    assert client.get("/api/v1/contracts", headers=bearer(shown)).status_code == 200
    assert "未使用" not in client.get("/admin/api-tokens").get_data(as_text=True)

    no_csrf = client.post(f"/admin/api-tokens/{row.id}/revoke")
    assert no_csrf.status_code == 400
    revoked = post_form(client, f"/admin/api-tokens/{row.id}/revoke", {}, page="/admin/api-tokens")
    assert revoked.status_code == 303
    assert_problem(client.get("/api/v1/contracts", headers=bearer(shown)), 401, "invalid_token")
    [row] = _rows(world)
    assert row.revoked_by_id == admin.id
    actions = [e.action for e in world.session.scalars(select(AuditEvent))]
    assert "admin:api-token:created" in actions
    assert "admin:api-token:revoked" in actions


def test_only_admins_manage_tokens(app, world):
    staff_page = world.staff_client.get("/admin/api-tokens")
    assert staff_page.status_code == 403
    token = csrf_from(world.staff_client.get("/contracts/").get_data(as_text=True))
    created = world.staff_client.post("/admin/api-tokens", data={"csrf_token": token,
                                                                 "user_email": world.staff.email})
    assert created.status_code == 403
    assert _rows(world) == []


def test_admin_form_refuses_a_long_label_with_a_message(app, client, world):
    admin = make_staff(world.session, role=Role.ADMIN, email="kanri@pref.example.jp", department=world.department)
    login_as(client, admin)
    response = post_form(client, "/admin/api-tokens", {"user_email": world.staff.email, "label": "x" * 101,
                                                        "scope": "write"})
    assert response.status_code == 422
    assert "100文字以内で入力してください" in response.get_data(as_text=True)
    assert _rows(world) == []
