"""Which client addresses may use the staff side, and changing the list without locking oneself out.

The client address is `request.remote_addr`: ProxyFix rewrites it from X-Forwarded-For only through
PORTAL_PROXY_FIX_HOPS trusted proxies, so a header sent by the client itself is never believed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from portal.access.models import StaffNetwork
from portal.audit.actions import AuditAction
from portal.audit.service import Actor, RequestInfo, record
from portal.errors import DomainError
from portal.security import client_ip

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_NETWORKS = 200

# Paths anyone may open: the vendor's side of the flow and what it links to.
PUBLIC_PREFIXES = ("/s/", "/d/", "/apply", "/verify", "/help", "/static/", "/pki/", "/tsa", "/healthz", "/readyz",
                   "/favicon")
STAFF_PREFIXES_UNDER_PUBLIC = ("/s/staff/",)


class InvalidNetworks(DomainError):
    pass


class OwnAddressExcluded(DomainError):
    pass


class NetworkNotAllowed(DomainError):
    status_code = 403

    def __init__(self, ip: str) -> None:
        super().__init__(f"この接続元（{ip}）からは職員用のページを利用できません。庁内のネットワークから接続してください。"
                         "必要な場合はシステム管理者に接続元の登録を依頼してください。")


def parse_networks(text: str | Iterable[str]) -> list[Network]:
    """Networks from one per line (or comma separated); a bare address means that host alone.

    :raise InvalidNetworks: naming the first entry that is not an IPv4/IPv6 address or CIDR.
    """
    items = text.replace(",", "\n").splitlines() if isinstance(text, str) else list(text)
    networks: list[Network] = []
    for raw in items:
        item = raw.split("#", 1)[0].strip()
        if not item:
            continue
        if len(item) > 64 or not item.isprintable():
            raise InvalidNetworks("IP アドレスまたは CIDR（例: 10.20.0.0/16）を 1 行に 1 つずつ入力してください。")
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise InvalidNetworks(
                f"「{item}」は IP アドレスまたは CIDR（例: 10.20.0.0/16, 2001:db8::/48）ではありません。") from None
        if network not in networks:
            networks.append(network)
    if len(networks) > MAX_NETWORKS:
        raise InvalidNetworks(f"登録できる接続元は {MAX_NETWORKS} 件までです。")
    return networks


def client_address(remote_addr: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(client_ip(remote_addr))
    except ValueError:
        return None


def display_address(remote_addr: str | None) -> str:
    address = client_address(remote_addr)
    return str(address) if address is not None else "不明"


def is_allowed(remote_addr: str | None, networks: Sequence[Network]) -> bool:
    """An empty list means no restriction; an unparseable address is never allowed by a list."""
    if not networks:
        return True
    address = client_address(remote_addr)
    return address is not None and any(address.version == n.version and address in n for n in networks)


def stored_networks(session: Session) -> list[StaffNetwork]:
    return list(session.scalars(select(StaffNetwork).order_by(StaffNetwork.id)))


def effective_networks(session: Session, configured: str | Iterable[str]) -> list[Network]:
    """The setting's networks plus the ones stored by administrators."""
    return parse_networks(configured) + [ipaddress.ip_network(row.cidr) for row in stored_networks(session)]


def is_public_path(path: str) -> bool:
    if path.startswith(STAFF_PREFIXES_UNDER_PUBLIC):
        return False
    return path == "/" or path.startswith(PUBLIC_PREFIXES)


def replace_networks(session: Session, text: str, *, configured: str | Iterable[str], actor: object,
                     request: RequestInfo, now: datetime) -> list[StaffNetwork]:
    """Store the administrators' list (replacing the previous one), refusing one that locks the actor out.

    :raise InvalidNetworks: an entry is not an address or CIDR.
    :raise OwnAddressExcluded: with the new list the actor's own address would be refused.
    """
    networks = parse_networks(text)
    combined = parse_networks(configured) + networks
    if combined and not is_allowed(request.ip, combined):
        raise OwnAddressExcluded(f"この内容ではあなたの接続元（{display_address(request.ip)}）が含まれないため、"
                                 "保存すると操作できなくなります。接続元を含めてから保存してください。")
    before = [row.cidr for row in stored_networks(session)]
    rows = [StaffNetwork(cidr=str(n), note="", created_by_id=getattr(actor, "id", None), created_at=now)
            for n in networks]
    _serialize_list_changes(session)
    session.execute(delete(StaffNetwork))
    session.add_all(rows)
    record(session, actor=Actor.staff(actor), action=AuditAction.STAFF_NETWORKS_CHANGED, ip=request.ip,
           user_agent=request.user_agent, now=now, before=before, after=[str(n) for n in networks])
    return rows


_LIST_LOCK = 0x6B65_6979  # any constant: the key of the PostgreSQL advisory lock for this list


def _serialize_list_changes(session: Session) -> None:
    """Two admins saving at once: the second waits for the first and replaces its list, never merges into it.

    SQLite already serialises writers (the write transaction begins IMMEDIATE); PostgreSQL needs a lock,
    as there is no row to lock while the list is empty.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LIST_LOCK})


def record_refusal(session: Session, *, path: str, request: RequestInfo, now: datetime, user: object = None) -> None:
    actor = Actor.staff(user) if getattr(user, "is_authenticated", False) else Actor("anonymous")
    record(session, actor=actor, action=AuditAction.STAFF_NETWORK_REFUSED, ip=request.ip,
           user_agent=request.user_agent, now=now, path=path[:300])
