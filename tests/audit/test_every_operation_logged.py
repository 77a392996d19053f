"""Each operation a person can do writes its audit event, with who (role and department for staff),
from which IP address and user agent, and on which object.

One world per database (tests/access_matrix_world.py: completed contracts A and B, their signing and
download links, an API token, logged-in clients). Each operation runs from its own address and user
agent, so the event found is the one that operation wrote.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.audit.actions import AuditAction as A
from portal.audit.models import AuditEvent
from portal.auth import passwords
from portal.auth.models import RecoveryCode, Role, StaffUser
from portal.contracts.models import Contract
from portal.usage_requests import service as usage_requests
from tests.access_matrix_world import REQUEST_INFO, MatrixWorld, build
from tests.conftest import csrf_from, post_form
from tests.contracts.fixtures import LINK_RE, today
from tests.factories import PASSWORD, make_staff, register_counterparty, totp_code
from tests.pdfs import make_pdf
from tests.usage_requests.conftest import form_data


@pytest.fixture(scope="module")
def world(database_url: str, pki_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MatrixWorld]:
    yield from build(database_url, tmp_path_factory.mktemp("operations") / "instance", pki_dir)


@dataclass
class Op:
    """One operation: what to do, the event it must write, and who must be its actor."""

    run: Callable[[Ctx], Any]
    action: A
    actor: str  # a principal (its user), "signer:<email>", "anonymous" or "new" (the user the op made)
    subject_type: str = ""
    details: tuple[tuple[str, Any], ...] = ()


class Ctx:
    def __init__(self, world: MatrixWorld, ip: str, user_agent: str) -> None:
        self.world, self.ip, self.user_agent = world, ip, user_agent
        self.new_user: StaffUser | None = None
        self.values = world.values

    def client(self, principal: str = "anonymous") -> FlaskClient:
        client = self.world.clients[principal] if principal != "fresh" else self.world.app.test_client()
        client.environ_base.update({"REMOTE_ADDR": self.ip, "HTTP_USER_AGENT": self.user_agent})
        return client

    def post(self, principal: str, url: str, data: dict[str, Any] | None = None, page: str | None = None) -> Any:
        return post_form(self.client(principal), url, data or {}, page=page or "/help")

    def user(self, **kwargs: Any) -> StaffUser:
        session = self.world.session
        email = f"op{abs(hash(self.user_agent)) % 10**8}@pref.example.jp"
        self.new_user = make_staff(session, email=email, name="操作 確認", department=self._kei(), **kwargs)
        return self.new_user

    def _kei(self) -> Any:
        from portal.auth.models import Department

        self.world.session.rollback()
        return self.world.session.scalar(select(Department).where(Department.code == "KEI"))

    # Contracts of their own, so that changing one leaves A and B as the matrix needs them
    def draft(self) -> int:
        data = {"business_name": "操作ログ確認業務", "contract_type": "委託",
                "counterparty_id": str(register_counterparty(self.world.session).id), "amount": "110000",
                "tax_amount": "10000", "transaction_date": today().isoformat(), "term_start": today().isoformat(),
                "term_end": today().replace(year=today().year + 1).isoformat(),
                "planned_conclusion_date": today().isoformat(), "signer_title": "代表取締役",
                "signer_name": "山田 太郎", "signer_email": "yamada@keiyaku-shoji.co.jp",
                # the world's accepted 申出書 registered another authority for this 取引先
                "signer_override": "y", "signer_override_reason": "操作ログの確認のため",
                "approver_email": "shonin@pref.example.jp", "signing_order": "counterparty_first"}
        response = post_form(self.world.clients["staff"], "/contracts/new", data)
        assert response.status_code == 303, response.get_data(as_text=True)
        contract_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
        client = self.world.clients["staff"]
        token = csrf_from(client.get(f"/contracts/{contract_id}").get_data(as_text=True))
        uploaded = client.post(f"/contracts/{contract_id}/documents", content_type="multipart/form-data",
                               data={"csrf_token": token, "files": [(io.BytesIO(make_pdf("Ops")), "ops.pdf")]})
        assert uploaded.status_code == 200, uploaded.get_data(as_text=True)
        return contract_id

    def approved(self) -> int:
        contract_id = self.draft()
        response = post_form(self.world.clients["approver"], f"/contracts/{contract_id}/approve",
                             {"reference": "総契第1号"}, page=f"/contracts/{contract_id}")
        assert response.status_code == 303, response.get_data(as_text=True)
        return contract_id

    def sent(self) -> tuple[int, str]:
        """A sent contract and the path of its counterparty's signing link."""
        contract_id = self.approved()
        response = post_form(self.world.clients["staff"], f"/contracts/{contract_id}/send", {},
                             page=f"/contracts/{contract_id}")
        assert response.status_code == 303, response.get_data(as_text=True)
        from portal.mail.models import OutboxMessage
        from portal.mail.service import deliverable_body

        self.world.session.rollback()
        message = self.world.session.scalars(select(OutboxMessage).where(OutboxMessage.template == "signature_request")
                                             .order_by(OutboxMessage.id.desc())).first()
        assert message is not None
        with self.world.app.app_context():
            match = LINK_RE.search(deliverable_body(message))
        assert match
        return contract_id, "/s/" + match.group(0).rsplit("/s/", 1)[1]

    def contract(self, contract_id: int) -> Contract:
        self.world.session.rollback()
        contract = self.world.session.get(Contract, contract_id)
        assert contract is not None
        return contract


def _login(ctx: Ctx, *, code: str | None = None, password: str = PASSWORD) -> Any:
    user = ctx.new_user or ctx.user()
    client = ctx.client("fresh")
    response = post_form(client, "/login", {"email": user.email, "password": password})
    if password != PASSWORD:
        return response
    return post_form(client, "/login/verify", {"code": code or totp_code(user)}), client


def _logout(ctx: Ctx) -> None:
    _, client = _login(ctx)
    token = csrf_from(client.get("/help").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code in (302, 303)


def _lockout(ctx: Ctx) -> None:
    ctx.user()
    for _ in range(ctx.world.app.config["LOGIN_MAX_FAILURES"]):
        _login(ctx, password="wrong password!!")


def _recovery(ctx: Ctx) -> None:
    user = ctx.user()
    session = ctx.world.session
    with ctx.world.app.app_context():
        session.add(RecoveryCode(user_id=user.id, code_hash=passwords.hash_secret("ab12c-3de45")))
        session.commit()
    _login(ctx, code="ab12c-3de45")


def _enrol(ctx: Ctx) -> None:
    """A new account's enrolment: password from the mailed link, then the authenticator app."""
    import pyotp

    from portal.auth import service as auth_service
    from portal.auth import totp

    user = ctx.user(enrolled=False)
    session = ctx.world.session
    with ctx.world.app.app_context():
        url = auth_service.issue_account_token(session, "enrol", user, now=_now())
        session.commit()
    client = ctx.client("fresh")
    path = "/account/enrol/" + url.rsplit("/", 1)[1]
    response = post_form(client, path, {"password": "long enough password", "confirm": "long enough password"})
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
    assert client.get("/account/mfa").status_code == 200
    session.rollback()
    session.refresh(user)
    with ctx.world.app.app_context():
        secret = totp.unseal_secret(user.totp_pending_sealed or "")
    response = post_form(client, "/account/mfa", {"code": pyotp.TOTP(secret).now()})
    assert "回復コード" in response.get_data(as_text=True), response.get_data(as_text=True)[:500]


def _api_create(ctx: Ctx) -> None:
    from types import SimpleNamespace

    from tests.api.helpers import metadata

    body = metadata(SimpleNamespace(approver=SimpleNamespace(email="shonin@pref.example.jp")),
                    signer_override_reason="操作ログの確認のため")  # the world registered another authority
    response = ctx.client("api_token").post("/api/v1/contracts", json=body)
    assert response.status_code == 201, response.get_data(as_text=True)[:500]


def _sign_as_counterparty(ctx: Ctx) -> None:
    _, link = ctx.sent()
    client = ctx.client("fresh")
    response = post_form(client, f"{link}/complete", {}, page=link)
    assert "署名手続きが完了しました" in response.get_data(as_text=True)


def _sign_as_agency(ctx: Ctx) -> None:
    contract_id, link = ctx.sent()
    post_form(ctx.world.app.test_client(), f"{link}/complete", {}, page=link)
    party_id = next(p.id for p in ctx.contract(contract_id).parties if p.staff_user_id is not None)
    response = ctx.post("approver", f"/s/staff/{party_id}/complete", page=f"/s/staff/{party_id}")
    assert "署名手続きが完了しました" in response.get_data(as_text=True), response.get_data(as_text=True)


def _decline(ctx: Ctx) -> None:
    _, link = ctx.sent()
    response = post_form(ctx.client("fresh"), f"{link}/decline", {"reason": "金額が違います"}, page=link)
    assert response.status_code in (200, 303), response.get_data(as_text=True)


def _close(kind: str) -> Callable[[Ctx], None]:
    def run(ctx: Ctx) -> None:
        contract_id, _ = ctx.sent()
        response = ctx.post("staff", f"/contracts/{contract_id}/{kind}", {"reason": "相手方の都合"},
                            page=f"/contracts/{contract_id}")
        assert response.status_code == 303, response.get_data(as_text=True)
    return run


def _request_approval(ctx: Ctx) -> None:
    contract_id = ctx.draft()
    ctx.post("staff", f"/contracts/{contract_id}/request-approval", page=f"/contracts/{contract_id}")


def _approve(ctx: Ctx) -> None:
    contract_id = ctx.draft()
    ctx.post("approver", f"/contracts/{contract_id}/approve", {"reference": "総契第2号"},
             page=f"/contracts/{contract_id}")


def _send(ctx: Ctx) -> None:
    contract_id = ctx.approved()
    ctx.post("staff", f"/contracts/{contract_id}/send", page=f"/contracts/{contract_id}")


def _create(ctx: Ctx) -> None:
    data = {"business_name": "作成確認", "contract_type": "委託",
            "counterparty_id": str(register_counterparty(ctx.world.session).id),
            "amount": "110000",
            "tax_amount": "10000", "transaction_date": today().isoformat(), "term_start": today().isoformat(),
            "term_end": today().replace(year=today().year + 1).isoformat(),
            "planned_conclusion_date": today().isoformat(), "signer_title": "代表取締役", "signer_name": "山田 太郎",
            "signer_email": "yamada@keiyaku-shoji.co.jp", "approver_email": "shonin@pref.example.jp",
            "signer_override": "y", "signer_override_reason": "操作ログの確認のため",
            "signing_order": "counterparty_first"}
    assert ctx.post("staff", "/contracts/new", data, page="/contracts/new").status_code == 303


def _upload(ctx: Ctx) -> None:
    contract_id = ctx.draft()
    client = ctx.client("staff")
    token = csrf_from(client.get(f"/contracts/{contract_id}").get_data(as_text=True))
    client.post(f"/contracts/{contract_id}/documents", content_type="multipart/form-data",
                data={"csrf_token": token, "files": [(io.BytesIO(make_pdf("More")), "more.pdf")]})


def _remove_document(ctx: Ctx) -> None:
    contract_id = ctx.draft()
    document_id = ctx.contract(contract_id).documents[0].id
    ctx.post("staff", f"/contracts/{contract_id}/documents/{document_id}/delete", page=f"/contracts/{contract_id}")


def _correct(ctx: Ctx) -> None:
    contract_id = ctx.values["contract_id"]
    response = ctx.post("staff", f"/preservation/contracts/{contract_id}/correct",
                        {"business_name": "訂正後の業務名 秘匿確認用の庁舎警備業務委託", "reason": "入力誤り"},
                        page=f"/preservation/contracts/{contract_id}/correct")
    assert response.status_code == 303, response.get_data(as_text=True)


def _get(principal: str, path: str, status: int | tuple[int, ...] = 200) -> Callable[[Ctx], None]:
    def run(ctx: Ctx) -> None:
        url = path.format(**ctx.values, signing=ctx.world.tokens["signing"]["staff"],
                          download=ctx.world.tokens["download"]["staff"])
        response = ctx.client(principal).get(url)
        expected = status if isinstance(status, tuple) else (status,)
        assert response.status_code in expected, (url, response.status_code, response.get_data(as_text=True)[:500])
    return run


def _api(path: str, token: str | None = None) -> Callable[[Ctx], None]:
    def run(ctx: Ctx) -> None:
        client = ctx.client("api_token")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = client.get(path.format(**ctx.values), headers=headers)
        assert response.status_code == (401 if token else 200), response.get_data(as_text=True)[:300]
    return run


def _admin_post(path: str, data: dict[str, Any], page: str | None = None) -> Callable[[Ctx], None]:
    def run(ctx: Ctx) -> None:
        url = path.format(**ctx.values)
        response = ctx.post("admin", url, data, page=(page or url).format(**ctx.values))
        assert response.status_code in (200, 303), response.get_data(as_text=True)[:800]
    return run


def _create_user(ctx: Ctx) -> None:
    kei = ctx._kei()
    _admin_post("/admin/users", {"email": "created-op@pref.example.jp", "name": "新規 職員", "title": "",
                                 "role": "staff", "department_id": str(kei.id)}, page="/admin/users")(ctx)


def _update_user(ctx: Ctx) -> None:
    user = ctx.user()
    _admin_post(f"/admin/users/{user.id}", {"name": "変更 後", "title": "主任", "role": "approver",
                                            "department_id": str(user.department_id)})(ctx)


def _disable_user(ctx: Ctx) -> None:
    user = ctx.user()
    _admin_post(f"/admin/users/{user.id}/active", {"active": "0"}, page=f"/admin/users/{user.id}")(ctx)


def _reset_mfa(ctx: Ctx) -> None:
    user = ctx.user()
    _admin_post(f"/admin/users/{user.id}/reset-mfa", {}, page=f"/admin/users/{user.id}")(ctx)


DEPARTMENT = {"code": "OPLOG", "name": "操作ログ課", "kind": "本庁", "go_live_date": "", "contact_phone": "",
              "contact_email": "", "is_active": "y"}


def _update_department(ctx: Ctx) -> None:
    _admin_post("/admin/departments/{department_id}", {**DEPARTMENT, "code": "DOB", "name": "土木部 道路建設課",
                                                       "contact_phone": "086-000-0001"})(ctx)


def _webhook(action: str) -> Callable[[Ctx], None]:
    def run(ctx: Ctx) -> None:
        if action == "create":
            _admin_post("/admin/webhooks", {"url": "https://hooks.example.jp/op", "events": ["contract.sent"]})(ctx)
        else:
            _admin_post("/admin/webhooks/{endpoint_id}", {"url": "https://hooks.example.jp/keiyaku",
                                                          "events": ["contract.completed"], "is_active": "y"})(ctx)
    return run


def _revoke_token(ctx: Ctx) -> None:
    from tests.api.helpers import token_for

    token_for(ctx.world.app, "ido@pref.example.jp")
    from portal.auth.models import ApiToken

    ctx.world.session.rollback()
    token_id = ctx.world.session.scalar(select(ApiToken.id).order_by(ApiToken.id.desc()))
    _admin_post(f"/admin/api-tokens/{token_id}/revoke", {}, page="/admin/api-tokens")(ctx)


def _apply(ctx: Ctx) -> None:
    response = post_form(ctx.client("fresh"), "/apply", form_data(contact_email="op@keiyaku-shoji.example.jp"))
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]


def _submitted(ctx: Ctx, *, confirmed: bool) -> Any:
    """A usage request submitted (and confirmed by its authority) through the service."""
    session, app = ctx.world.session, ctx.world.app
    with app.app_context():
        submitted = usage_requests.submit(session, usage_requests.UsageRequestData(
            address="岡山県岡山市北区内山下2-4-6", company_name="株式会社もどし", representative="代表取締役 岡山 太郎",
            contact_person="吉備 花子", contact_phone="086-224-2111", contact_email="modoshi@example.jp",
            contract_name="清掃", authority_title="代表取締役", authority_name="髙橋 一郎",
            authority_email="ichiro@modoshi.example.jp"), department=ctx._kei(), now=_now(),
            request=REQUEST_INFO)
        if confirmed:
            usage_requests.confirm(session, submitted.usage_request, now=_now(), request=REQUEST_INFO)
        session.commit()
    return submitted


def _review_usage_request(kind: str) -> Callable[[Ctx], None]:
    def run(ctx: Ctx) -> None:
        request_id = _submitted(ctx, confirmed=True).usage_request.id
        response = ctx.post("staff", f"/usage-requests/{request_id}/{kind}", {"reason": "役職が空欄です"},
                            page=f"/usage-requests/{request_id}")
        assert response.status_code in (200, 303), response.get_data(as_text=True)[:500]
    return run


def _confirm_usage_request(ctx: Ctx) -> None:
    token = _submitted(ctx, confirmed=False).confirm_token
    response = post_form(ctx.client("fresh"), f"/apply/confirm/{token}", {})
    assert response.status_code == 200, response.get_data(as_text=True)[:500]


def _now() -> Any:
    from portal import clock

    return clock.now()


def _networks(ctx: Ctx) -> None:
    _admin_post("/admin/networks", {"networks": "0.0.0.0/0\n::/0"})(ctx)


def _retention(ctx: Ctx) -> None:
    _admin_post("/preservation/retention", {"department": "", "contract_type": "", "years": "11",
                                            "note": "操作ログ確認"})(ctx)


OPERATIONS: dict[str, Op] = {
    # Reading contracts: pages, page images, documents, certificates, history
    "contract page": Op(_get("staff", "/contracts/{contract_id}"), A.CONTRACT_VIEWED, "staff", "contracts"),
    "page image": Op(_get("staff", "/contracts/{contract_id}/documents/{document_id}/pages/1.jpg"),
                     A.CONTRACT_PAGE_VIEWED, "staff", "contracts", (("page", 1),)),
    "document download": Op(_get("auditor", "/contracts/{contract_id}/documents/{document_id}/download"),
                            A.CONTRACT_DOCUMENT_DOWNLOADED, "auditor", "contracts"),
    "certificate": Op(_get("approver", "/contracts/{contract_id}/certificate"),
                      A.CONTRACT_CERTIFICATE_DOWNLOADED, "approver", "contracts"),
    "correction history": Op(_get("staff", "/preservation/contracts/{contract_id}/history"),
                             A.CONTRACT_HISTORY_VIEWED, "staff", "contracts"),
    # Signers' reading
    "signing page": Op(_get("fresh", "/s/{signing}"), A.CONTRACT_REVIEWED, "signer:yamada@keiyaku-shoji.co.jp",
                       "contracts"),
    "signer page image": Op(_get("fresh", "/s/{signing}/documents/{document_id}/pages/1.jpg"),
                            A.CONTRACT_PAGE_VIEWED, "signer:yamada@keiyaku-shoji.co.jp", "contracts"),
    "signer original": Op(_get("fresh", "/s/{signing}/documents/{document_id}/original"),
                          A.CONTRACT_DOCUMENT_DOWNLOADED, "signer:yamada@keiyaku-shoji.co.jp", "contracts"),
    # The 14-day completion link
    "download link page": Op(_get("fresh", "/d/{download}"), A.CONTRACT_LINK_OPENED,
                             "signer:yamada@keiyaku-shoji.co.jp", "contracts"),
    "download link document": Op(_get("fresh", "/d/{download}/documents/{document_id}"), A.CONTRACT_LINK_DOWNLOADED,
                                 "signer:yamada@keiyaku-shoji.co.jp", "contracts"),
    "download link certificate": Op(_get("fresh", "/d/{download}/certificate"), A.CONTRACT_LINK_DOWNLOADED,
                                    "signer:yamada@keiyaku-shoji.co.jp", "contracts"),
    # Search and exports, with their criteria
    "search": Op(_get("staff", "/search/?counterparty=けいやく"), A.SEARCH_PERFORMED, "staff", "",
                 (("query", "counterparty=けいやく"),)),
    "search export": Op(_get("auditor", "/search/export.csv?date_from=R8.4"), A.SEARCH_EXPORTED, "auditor", "",
                        (("query", "date_from=R8.4"), ("format", "csv"))),
    # The contract procedure
    "create": Op(_create, A.CONTRACT_CREATED, "staff", "contracts"),
    "upload": Op(_upload, A.CONTRACT_DOCUMENT_ADDED, "staff", "contracts"),
    "remove document": Op(_remove_document, A.CONTRACT_DOCUMENT_REMOVED, "staff", "contracts"),
    "request approval": Op(_request_approval, A.CONTRACT_APPROVAL_REQUESTED, "staff", "contracts"),
    "決裁": Op(_approve, A.CONTRACT_APPROVED, "approver", "contracts", (("reference", "総契第2号"),)),
    "send": Op(_send, A.CONTRACT_SENT, "staff", "contracts"),
    "sign (counterparty)": Op(_sign_as_counterparty, A.CONTRACT_SIGNED, "signer:yamada@keiyaku-shoji.co.jp",
                              "contracts"),
    "sign (agency)": Op(_sign_as_agency, A.CONTRACT_SIGNED, "approver", "contracts"),
    "decline": Op(_decline, A.CONTRACT_DECLINED, "signer:yamada@keiyaku-shoji.co.jp", "contracts",
                  (("reason", "金額が違います"),)),
    "paper": Op(_close("paper"), A.CONTRACT_SWITCHED_TO_PAPER, "staff", "contracts", (("reason", "相手方の都合"),)),
    "cancel": Op(_close("cancel"), A.CONTRACT_CANCELLED, "staff", "contracts", (("reason", "相手方の都合"),)),
    "correction": Op(_correct, A.METADATA_CORRECTED, "staff", "contracts", (("reason", "入力誤り"),)),
    # Usage requests (利用申出)
    "apply": Op(_apply, A.USAGE_REQUEST_SUBMITTED, "anonymous", "usage_requests"),
    "usage request page": Op(_get("staff", "/usage-requests/{request_id}"), A.USAGE_REQUEST_VIEWED, "staff",
                             "usage_requests"),
    "usage request pdf": Op(_get("staff", "/usage-requests/{request_id}/form.pdf"), A.USAGE_REQUEST_PDF_DOWNLOADED,
                            "staff", "usage_requests"),
    "usage request confirm": Op(_confirm_usage_request, A.USAGE_REQUEST_CONFIRMED, "signer:ichiro@modoshi.example.jp",
                                "usage_requests"),
    "usage request accept": Op(_review_usage_request("accept"), A.USAGE_REQUEST_ACCEPTED, "staff", "usage_requests"),
    "usage request return": Op(_review_usage_request("return"), A.USAGE_REQUEST_RETURNED, "staff", "usage_requests",
                               (("reason", "役職が空欄です"),)),
    # Login, logout, failures, lockout, MFA and recovery codes
    "login": Op(lambda ctx: _login(ctx), A.LOGIN_SUCCEEDED, "new", "staff_users"),
    "logout": Op(_logout, A.LOGOUT, "new", "staff_users"),
    "wrong password": Op(lambda ctx: _login(ctx, password="wrong password!!"), A.LOGIN_FAILED, "new",
                         "staff_users", (("step", "password"),)),
    "wrong code": Op(lambda ctx: _login(ctx, code="000000"), A.LOGIN_FAILED, "new", "staff_users",
                     (("step", "totp"),)),
    "lockout": Op(_lockout, A.LOGIN_LOCKED, "system", "staff_users"),
    "recovery code": Op(_recovery, A.MFA_RECOVERY_USED, "new", "staff_users"),
    "password set (enrolment)": Op(_enrol, A.PASSWORD_SET, "new", "staff_users"),
    "MFA enrolment": Op(_enrol, A.MFA_ENROLLED, "new", "staff_users"),
    # Administration: users, departments, roles, settings
    "create user": Op(_create_user, A.USER_CREATED, "admin", "staff_users"),
    "change role": Op(_update_user, A.USER_UPDATED, "admin", "staff_users"),
    "disable user": Op(_disable_user, A.USER_DISABLED, "admin", "staff_users"),
    "reset MFA": Op(_reset_mfa, A.MFA_RESET, "admin", "staff_users"),
    "create department": Op(_admin_post("/admin/departments", DEPARTMENT), A.DEPARTMENT_CREATED, "admin",
                            "departments"),
    "change department": Op(_update_department, A.DEPARTMENT_UPDATED, "admin", "departments"),
    "staff networks": Op(_networks, A.STAFF_NETWORKS_CHANGED, "admin"),
    "retention": Op(_retention, A.RETENTION_POLICY_SET, "admin", "retention_policies"),
    # API tokens and webhooks
    "create API token": Op(_admin_post("/admin/api-tokens", {"user_email": "ido@pref.example.jp", "label": "連携",
                                                             "scope": "read", "expires_on": ""}),
                           A.API_TOKEN_CREATED, "admin", "staff_users"),
    "revoke API token": Op(_revoke_token, A.API_TOKEN_REVOKED, "admin", "staff_users"),
    "API token use": Op(_api("/api/v1/contracts?counterparty=けいやく"), A.API_TOKEN_USED, "staff", "api_tokens"),
    "API search": Op(_api("/api/v1/contracts?counterparty=けいやく"), A.API_SEARCHED, "staff"),
    "API contract": Op(_api("/api/v1/contracts/{contract_id}"), A.API_CONTRACT_VIEWED, "staff", "contracts"),
    "API document": Op(_api("/api/v1/contracts/{contract_id}/documents/1"), A.API_DOCUMENT_DOWNLOADED, "staff",
                       "contracts"),
    "API create": Op(_api_create, A.CONTRACT_CREATED, "staff", "contracts"),
    "API bad token": Op(_api("/api/v1/contracts", token="not-a-token"), A.API_TOKEN_REFUSED, "anonymous"),
    "create webhook": Op(_webhook("create"), A.WEBHOOK_ENDPOINT_CREATED, "admin", "webhook_endpoints"),
    "change webhook": Op(_webhook("update"), A.WEBHOOK_ENDPOINT_UPDATED, "admin", "webhook_endpoints"),
    "delete webhook": Op(_admin_post("/admin/webhooks/{spare_endpoint_id}/delete", {},
                                     page="/admin/webhooks/{spare_endpoint_id}"),
                         A.WEBHOOK_ENDPOINT_DELETED, "admin", "webhook_endpoints"),
    # Mails, and the log itself
    "mail list": Op(_get("admin", "/admin/mail/"), A.MAIL_LIST_VIEWED, "admin"),
    "mail view": Op(_get("admin", "/admin/mail/{message_id}"), A.MAIL_VIEWED, "admin", "outbox_messages"),
    "audit viewer": Op(_get("auditor", "/audit/?person=髙橋"), A.AUDIT_VIEWED, "auditor", "",
                       (("criteria", {"person": "髙橋"}),)),
    "audit export": Op(_get("admin", "/audit/export.csv?action=group:login"), A.AUDIT_EXPORTED, "admin", "",
                       (("criteria", {"action": "group:login"}),)),
}
PRINCIPAL_EMAILS = {"staff": "tanto@pref.example.jp", "approver": "shonin@pref.example.jp",
                    "auditor": "kansa@pref.example.jp", "admin": "kanri@pref.example.jp"}


@pytest.mark.parametrize("name", list(OPERATIONS), ids=list(OPERATIONS))
def test_each_operation_writes_its_event(world: MatrixWorld, name: str) -> None:
    op = OPERATIONS[name]
    number = list(OPERATIONS).index(name)
    ip, user_agent = f"198.51.{100 + number // 250}.{number % 250 + 1}", f"ops-test/{number} ({name})"
    ctx = Ctx(world, ip, user_agent)

    op.run(ctx)

    session = world.session
    session.rollback()
    events = list(session.scalars(select(AuditEvent).where(AuditEvent.action == str(op.action),
                                                           AuditEvent.user_agent == user_agent)))
    assert events, f"{name}: no {op.action} event from this request (user agent {user_agent!r})"
    event = events[-1]
    assert event.ip == ip
    _assert_actor(session, event, op, ctx)
    if op.subject_type:
        assert event.subject_type == op.subject_type
        assert event.subject_id
    for key, value in op.details:
        assert event.details.get(key) == value, (key, event.details)


def _assert_actor(session: Any, event: AuditEvent, op: Op, ctx: Ctx) -> None:
    if op.actor.startswith("signer:"):
        assert (event.actor_type, event.actor_label) == ("signer", op.actor[7:])
    elif op.actor in ("anonymous", "system"):
        assert event.actor_type == op.actor
    else:
        user = ctx.new_user if op.actor == "new" else session.scalar(
            select(StaffUser).where(StaffUser.email == PRINCIPAL_EMAILS[op.actor]))
        assert user is not None
        assert event.actor_type == "staff"
        assert event.actor_user_id == user.id
        assert event.details["actor_role"] == str(user.role)
        assert event.details["actor_department_id"] == user.department_id
        assert event.details["actor_department"] == user.department.name


def test_role_of_the_actor_is_the_one_at_the_time(world: MatrixWorld) -> None:
    """The role stored is the one the user had when acting, not the one they have now."""
    ctx = Ctx(world, "198.51.110.1", "ops-test/role-change")
    user = ctx.user(role=Role.STAFF)
    _login(ctx)
    session = world.session
    user.role = Role.AUDITOR
    session.commit()
    session.rollback()
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == str(A.LOGIN_SUCCEEDED),
                                                     AuditEvent.actor_user_id == user.id)).one()
    assert event.details["actor_role"] == "staff"

