"""Staff pages, the staff login and the API answer only from the allowed networks; vendor pages from anywhere.

The restriction is checked over real TCP connections to a live server listening on a dual-stack socket,
from 127.0.0.1, 127.0.0.2 and ::1 (the connection's source address is what the server sees).
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from portal.access import service
from portal.access.models import StaffNetwork
from portal.audit.actions import AuditAction
from portal.audit.models import AuditEvent
from portal.auth.models import Role
from tests.conftest import csrf_from, require, reread
from tests.factories import login_as, make_staff
from tests.services.live import HttpClient, LiveServer

ALLOWED = "127.0.0.2/32, 10.20.0.0/16"


def _ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"STAFF_ALLOWED_NETWORKS": ALLOWED}


@pytest.fixture
def dual_stack_server(app: Flask) -> Iterator[int]:
    require(_ipv6_loopback_available(), "this machine has no IPv6 loopback (::1)")
    with LiveServer(app, host="::") as server:
        yield server.port
    assert not server.errors, "\n".join(server.errors)


def fetch(port: int, path: str, *, source: str, host: str | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, str]:
    """GET path over a new connection whose source address is `source`."""
    target = host or ("::1" if ":" in source else "127.0.0.1")
    connection = http.client.HTTPConnection(target, port, timeout=10, source_address=(source, 0))
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


STAFF_PATHS = ["/login", "/contracts/", "/search/", "/admin/users", "/api/v1/contracts", "/s/staff/1",
               "/usage-requests/"]
PUBLIC_PATHS = ["/", "/apply", "/help", "/verify", "/static/css/portal.css"]


def test_staff_side_answers_only_inside_the_allowed_networks(dual_stack_server):
    port = dual_stack_server
    status, _ = fetch(port, "/login", source="127.0.0.2")
    assert status == 200
    for path in STAFF_PATHS:
        status, body = fetch(port, path, source="127.0.0.1")
        assert status == 403, path
        if not path.startswith("/api/"):
            assert "この接続元（127.0.0.1）からは職員用のページを利用できません" in body, path
        status, _ = fetch(port, path, source="::1")
        assert status == 403, path


def test_vendor_pages_answer_from_anywhere(dual_stack_server):
    port = dual_stack_server
    for source in ("127.0.0.1", "::1"):
        for path in PUBLIC_PATHS:
            status, _ = fetch(port, path, source=source)
            assert status == 200, (source, path)
        status, body = fetch(port, "/s/not-a-real-token", source=source)
        assert status in (404, 410), body
        assert "接続元" not in body


def test_x_forwarded_for_from_the_client_is_not_believed(dual_stack_server):
    status, _ = fetch(dual_stack_server, "/login", source="127.0.0.1", headers={"X-Forwarded-For": "127.0.0.2"})
    assert status == 403


def test_a_refused_request_is_in_the_operation_log(dual_stack_server, session):
    fetch(dual_stack_server, "/contracts/", source="127.0.0.1")
    events = reread(session).scalars(
        select(AuditEvent).where(AuditEvent.action == AuditAction.STAFF_NETWORK_REFUSED.value)).all()
    assert [(event.ip, event.details["path"]) for event in events] == [("127.0.0.1", "/contracts/")]


def test_through_one_trusted_proxy_the_forwarded_address_counts(app):
    app.config["PROXY_FIX_HOPS"] = 1
    from werkzeug.middleware.proxy_fix import ProxyFix

    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    client = app.test_client()
    inside = client.get("/login", headers={"X-Forwarded-For": "198.51.100.7, 10.20.3.4"},
                        environ_base={"REMOTE_ADDR": "192.0.2.1"})
    assert inside.status_code == 200
    outside = client.get("/login", headers={"X-Forwarded-For": "10.20.3.4, 198.51.100.7"},
                         environ_base={"REMOTE_ADDR": "192.0.2.1"})
    assert outside.status_code == 403


@pytest.fixture
def admin_client(app, session):
    admin = make_staff(session, role=Role.ADMIN, email="admin@pref.example.jp")
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "127.0.0.2"
    login_as(client, admin)
    return client


def _save(client, text: str):
    token = csrf_from(client.get("/admin/networks").get_data(as_text=True))
    return client.post("/admin/networks", data={"csrf_token": token, "networks": text})


def test_admin_saves_a_list_and_it_applies(admin_client, app, session):
    response = _save(admin_client, "2001:db8::/48\n192.0.2.0/24 # 県民局")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert sorted(row.cidr for row in reread(session).scalars(select(StaffNetwork))) == ["192.0.2.0/24",
                                                                                         "2001:db8::/48"]
    client = app.test_client()
    assert client.get("/login", environ_base={"REMOTE_ADDR": "192.0.2.9"}).status_code == 200
    assert client.get("/login", environ_base={"REMOTE_ADDR": "2001:db8::5"}).status_code == 200
    assert client.get("/login", environ_base={"REMOTE_ADDR": "198.51.100.1"}).status_code == 403
    event = reread(session).scalars(
        select(AuditEvent).where(AuditEvent.action == AuditAction.STAFF_NETWORKS_CHANGED.value)).one()
    assert event.details["after"] == ["2001:db8::/48", "192.0.2.0/24"]


def test_a_list_that_excludes_the_admin_is_refused(app, session):
    app.config["STAFF_ALLOWED_NETWORKS"] = ""
    admin = make_staff(session, role=Role.ADMIN, email="admin@pref.example.jp")
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "127.0.0.2"
    login_as(client, admin)
    response = _save(client, "10.99.0.0/16")
    assert response.status_code == 422
    assert "あなたの接続元（127.0.0.2）が含まれない" in response.get_data(as_text=True)
    assert reread(session).scalars(select(StaffNetwork)).all() == []


@pytest.mark.parametrize("hostile", [
    "10.0.0.0/33", "not-an-address", "<script>alert(1)</script>", "10.0.0.1\x00", "1" * 100_000,
    "=HYPERLINK(\"http://evil.example\")",
])
def test_hostile_entries_are_refused_with_a_message(admin_client, session, hostile):
    response = _save(admin_client, f"127.0.0.2\n{hostile}")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "IP アドレスまたは CIDR" in html
    assert "<script>alert(1)</script>" not in html
    assert reread(session).scalars(select(StaffNetwork)).all() == []


def test_staff_cannot_edit_the_list(app, session):
    user = make_staff(session, role=Role.STAFF)
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "127.0.0.2"
    login_as(client, user)
    assert client.get("/admin/networks").status_code == 403


def test_address_matching():
    networks = service.parse_networks("10.0.0.0/8, 2001:db8::/32")
    assert service.is_allowed("10.1.2.3", networks)
    assert service.is_allowed("::ffff:10.1.2.3", networks)  # IPv4 seen through a dual-stack socket
    assert service.is_allowed("2001:db8::1", networks)
    assert not service.is_allowed("11.0.0.1", networks)
    assert not service.is_allowed("", networks)
    assert not service.is_allowed("garbage", networks)
    assert service.is_allowed("203.0.113.1", [])


def test_two_admins_saving_at_once_leave_one_of_their_lists(app, session):
    first = make_staff(session, role=Role.ADMIN, email="admin1@pref.example.jp")
    second = make_staff(session, role=Role.ADMIN, email="admin2@pref.example.jp")
    lists = {"admin1@pref.example.jp": ["127.0.0.0/8", "10.1.0.0/16"],
             "admin2@pref.example.jp": ["127.0.0.0/8", "10.2.0.0/16", "10.3.0.0/16"]}
    app.config["STAFF_ALLOWED_NETWORKS"] = ""
    replies: list[int] = []
    with LiveServer(app) as server:
        clients = []
        for user in (first, second):
            client = HttpClient(server.url)
            client.login(user)
            clients.append((client, client.csrf("/admin/networks"), lists[user.email]))
        start = threading.Barrier(len(clients))

        def save(client: HttpClient, token: str, networks: list[str]) -> None:
            start.wait()
            replies.append(client.post("/admin/networks", {"csrf_token": token, "networks": "\n".join(networks)})
                           .status)

        threads = [threading.Thread(target=save, args=entry) for entry in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert not server.errors, "\n".join(server.errors)
    assert sorted(replies) == [200, 200]
    stored = sorted(row.cidr for row in reread(session).scalars(select(StaffNetwork)))
    assert stored in (sorted(lists["admin1@pref.example.jp"]), sorted(lists["admin2@pref.example.jp"]))
    changes = reread(session).scalars(select(AuditEvent).where(
        AuditEvent.action == AuditAction.STAFF_NETWORKS_CHANGED.value)).all()
    assert len(changes) == 2
