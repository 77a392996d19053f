"""One access matrix: every route of the URL map × eight principals, with the answer each must get.

Principals (tests/access_matrix_world.py builds them): anonymous; staff (担当者 of KEI, the department
of contract A); other_staff (担当者 of another department); approver (承認者 of KEI, contract A's agency
signer); auditor (監査担当, of the audit office); admin; other_signer (no account, holding the signing
and download links of contract B); api_token (a bearer token of the KEI 担当者, no session).

Answers: "ok" is anything that is not a refusal (2xx, a redirect elsewhere than /login, 400/409/410/
415/422 for the empty form or the contract's state); "login" a redirect to /login; "403" the Japanese
403 page; "404" the 404 page (another department's contract is not revealed: 404, not 403); "401" and
"403 api" the problem+json answers of /api/. Every POST is sent with only the CSRF token, so an
allowed principal changes nothing that later cases need (targets of the admin buttons are spares).

A route that is not in MATRIX fails test_every_route_has_an_entry, naming it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from werkzeug.test import TestResponse

from tests.access_matrix_world import PRINCIPALS, SECRET_A, MatrixWorld, build

OK, LOGIN, FORBIDDEN, NOT_FOUND, UNAUTHORIZED, API_FORBIDDEN = "ok", "login", "403", "404", "401", "403 api"


def row(*answers: str) -> dict[str, str]:
    assert len(answers) == len(PRINCIPALS)
    return dict(zip(PRINCIPALS, answers, strict=True))


# Policies: the expected answer per principal, in the order of PRINCIPALS.
#                             anonymous  staff      other_staff approver  auditor    admin      other_signer api_token
PUBLIC = row(                 OK,        OK,        OK,        OK,        OK,        OK,        OK,        OK)
# The second login step and MFA enrolment need the state of the first step; without it (and after
# logging out) everyone is sent to /login.
LOGIN_STEP = row(             LOGIN,     LOGIN,     LOGIN,     LOGIN,     LOGIN,     LOGIN,     LOGIN,     LOGIN)
# Single sign-on is not configured in this world: its pages answer 404 to everyone.
SSO_OFF = row(                NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND)
# The link is the credential: whoever holds it reads and signs; another contract's link reaches
# none of contract A's documents.
SIGNER_LINK = PUBLIC
SIGNER_LINK_DOCUMENT = row(   OK,        OK,        OK,        OK,        OK,        OK,        NOT_FOUND, OK)
DOWNLOAD_LINK = PUBLIC
DOWNLOAD_LINK_DOCUMENT = SIGNER_LINK_DOCUMENT
# Staff pages without a contract in the URL (lists show only what the user may see).
STAFF = row(                  LOGIN,     OK,        OK,        OK,        OK,        OK,        LOGIN,     LOGIN)
EDITOR = row(                 LOGIN,     OK,        OK,        OK,        FORBIDDEN, OK,        LOGIN,     LOGIN)
STAFF_ROLE = row(             LOGIN,     OK,        OK,        FORBIDDEN, FORBIDDEN, OK,        LOGIN,     LOGIN)
# Contract A's pages: its department, its signers, auditors and admins; for others it does not exist.
CONTRACT_VIEWER = row(        LOGIN,     OK,        NOT_FOUND, OK,        OK,        OK,        LOGIN,     LOGIN)
CONTRACT_EDITOR = row(        LOGIN,     OK,        NOT_FOUND, OK,        FORBIDDEN, OK,        LOGIN,     LOGIN)
CONTRACT_APPROVER = row(      LOGIN,     FORBIDDEN, FORBIDDEN, OK,        FORBIDDEN, OK,        LOGIN,     LOGIN)
# The agency signer's pages of contract A: only the approver who is that party (an admin too gets 404).
AGENCY_SIGNER = row(          LOGIN,     FORBIDDEN, FORBIDDEN, OK,        FORBIDDEN, NOT_FOUND, LOGIN,     LOGIN)
# A usage request of KEI: its department and admins (the auditor, of another office, does not see it).
USAGE_REQUEST_VIEWER = row(   LOGIN,     OK,        NOT_FOUND, OK,        NOT_FOUND, OK,        LOGIN,     LOGIN)
USAGE_REQUEST_REVIEWER = row( LOGIN,     OK,        NOT_FOUND, OK,        FORBIDDEN, OK,        LOGIN,     LOGIN)
AUDITOR = row(                LOGIN,     FORBIDDEN, FORBIDDEN, FORBIDDEN, OK,        OK,        LOGIN,     LOGIN)
ADMIN = row(                  LOGIN,     FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK,        LOGIN,     LOGIN)
# /api/v1: a bearer token only (a staff session is no credential there); the token acts with its
# user's role, a 担当者 cannot approve.
API = row(                    UNAUTHORIZED, UNAUTHORIZED, UNAUTHORIZED, UNAUTHORIZED, UNAUTHORIZED, UNAUTHORIZED,
                              UNAUTHORIZED, OK)
API_APPROVER = row(           UNAUTHORIZED, UNAUTHORIZED, UNAUTHORIZED, UNAUTHORIZED, UNAUTHORIZED, UNAUTHORIZED,
                              UNAUTHORIZED, API_FORBIDDEN)


@dataclass(frozen=True)
class Entry:
    policy: dict[str, str]
    token: str | None = None  # which world token fills <token>: signing, download, setup, enrol, confirm
    values: tuple[tuple[str, Any], ...] = ()  # URL arguments for this route only


def entry(policy: dict[str, str], token: str | None = None, **values: Any) -> Entry:
    return Entry(policy, token, tuple(values.items()))


MATRIX: dict[str, Entry] = {
    # Public pages
    "GET /": entry(PUBLIC),
    "GET /help": entry(PUBLIC),
    "GET /help/docs/": entry(PUBLIC),
    "GET /help/docs/<name>": entry(PUBLIC, name="manual-staff"),
    "GET /help/docs/screenshots/<name>.png": entry(PUBLIC, name="manual-vendor-signing-phone"),
    "GET /verify": entry(PUBLIC),
    "POST /verify": entry(PUBLIC),
    "POST /tsa": entry(PUBLIC),
    "GET /pki/<name>.crt": entry(PUBLIC, name="root"),
    "GET /pki/crl/<name>.crl": entry(PUBLIC, name="root"),
    "GET /api/v1/openapi.json": entry(PUBLIC),
    # For load balancers and the container's HEALTHCHECK (readiness answers 200 here: everything works)
    "GET /healthz": entry(PUBLIC),
    "GET /readyz": entry(PUBLIC),
    # Vendors: the usage request (利用申出)
    "GET /apply": entry(PUBLIC),
    "POST /apply": entry(PUBLIC),
    "GET /apply/form.pdf": entry(PUBLIC),
    "GET /apply/submitted": entry(PUBLIC),
    "POST /apply/validate/<field_name>": entry(PUBLIC),
    "GET /apply/confirm/<token>": entry(PUBLIC, "confirm"),
    "POST /apply/confirm/<token>": entry(PUBLIC, "confirm"),
    # The correction link of a returned 申出書 (the POST with only a CSRF token is refused: 422)
    "GET /apply/correct/<token>": entry(PUBLIC, "correction"),
    "POST /apply/correct/<token>": entry(PUBLIC, "correction"),
    # Staff login and accounts
    "GET /login": entry(PUBLIC),
    "POST /login": entry(PUBLIC),
    "GET /login/verify": entry(LOGIN_STEP),
    "POST /login/verify": entry(LOGIN_STEP),
    "GET /login/sso": entry(SSO_OFF),
    "GET /login/sso/callback": entry(SSO_OFF),
    "POST /logout": entry(LOGIN_STEP),
    "GET /setup/<token>": entry(PUBLIC, "setup"),
    "POST /setup/<token>": entry(PUBLIC, "setup"),
    "GET /account/enrol/<token>": entry(PUBLIC, "enrol"),
    "POST /account/enrol/<token>": entry(PUBLIC, "enrol"),
    "GET /account/mfa": entry(LOGIN_STEP),
    "POST /account/mfa": entry(LOGIN_STEP),
    # Signer pages of the counterparty (link) and of the agency approver (logged in)
    "GET /s/<token>": entry(SIGNER_LINK, "signing"),
    "GET /s/<token>/documents/<int:document_id>": entry(SIGNER_LINK, "signing"),  # another link: its own tab
    "GET /s/<token>/documents/<int:document_id>/pages/<int:page>.jpg": entry(SIGNER_LINK_DOCUMENT, "signing"),
    "GET /s/<token>/documents/<int:document_id>/original": entry(SIGNER_LINK_DOCUMENT, "signing"),
    "GET /s/<token>/confirm": entry(SIGNER_LINK, "signing"),
    "POST /s/<token>/access-code": entry(SIGNER_LINK, "signing"),
    "GET /s/<token>/documents.zip": entry(SIGNER_LINK, "signing"),  # another link: its own contract's documents
    "POST /s/<token>/complete": entry(SIGNER_LINK, "signing"),
    "GET /s/<token>/decline": entry(SIGNER_LINK, "signing"),
    "POST /s/<token>/decline": entry(SIGNER_LINK, "signing"),
    "GET /s/staff/<int:party_id>": entry(AGENCY_SIGNER),
    "GET /s/staff/<int:party_id>/documents/<int:document_id>": entry(AGENCY_SIGNER),
    "GET /s/staff/<int:party_id>/documents/<int:document_id>/pages/<int:page>.jpg": entry(AGENCY_SIGNER),
    "GET /s/staff/<int:party_id>/documents/<int:document_id>/original": entry(AGENCY_SIGNER),
    "GET /s/staff/<int:party_id>/confirm": entry(AGENCY_SIGNER),
    "GET /s/staff/<int:party_id>/documents.zip": entry(AGENCY_SIGNER),
    "POST /s/staff/<int:party_id>/complete": entry(AGENCY_SIGNER),
    "GET /s/staff/<int:party_id>/decline": entry(AGENCY_SIGNER),
    "POST /s/staff/<int:party_id>/decline": entry(AGENCY_SIGNER),
    # Completion links
    "GET /d/<token>": entry(DOWNLOAD_LINK, "download"),
    "GET /d/<token>/documents/<int:document_id>": entry(DOWNLOAD_LINK_DOCUMENT, "download"),
    "GET /d/<token>/certificate": entry(DOWNLOAD_LINK, "download"),
    # Contracts
    "GET /contracts/": entry(STAFF),
    "GET /contracts/new": entry(EDITOR),
    "POST /contracts/new": entry(EDITOR),
    "GET /contracts/<int:contract_id>": entry(CONTRACT_VIEWER),
    "POST /contracts/<int:contract_id>/documents": entry(CONTRACT_EDITOR),
    "POST /contracts/<int:contract_id>/documents/<int:document_id>/delete": entry(CONTRACT_EDITOR),
    "GET /contracts/<int:contract_id>/documents/<int:document_id>/pages/<int:page>.jpg": entry(CONTRACT_VIEWER),
    "GET /contracts/<int:contract_id>/documents/<int:document_id>/download": entry(CONTRACT_VIEWER),
    "GET /contracts/<int:contract_id>/certificate": entry(CONTRACT_VIEWER),
    "POST /contracts/<int:contract_id>/consent": entry(CONTRACT_EDITOR),
    "POST /contracts/<int:contract_id>/request-approval": entry(CONTRACT_EDITOR),
    "POST /contracts/<int:contract_id>/approve": entry(CONTRACT_APPROVER),
    "POST /contracts/<int:contract_id>/send": entry(CONTRACT_EDITOR),
    "POST /contracts/<int:contract_id>/paper": entry(CONTRACT_EDITOR),
    "POST /contracts/<int:contract_id>/cancel": entry(CONTRACT_EDITOR),
    "GET /contracts/<int:contract_id>/edit": entry(CONTRACT_EDITOR),
    "POST /contracts/<int:contract_id>/edit": entry(CONTRACT_EDITOR),
    "GET /contracts/<int:contract_id>/copy": entry(CONTRACT_EDITOR),
    "POST /contracts/<int:contract_id>/copy": entry(CONTRACT_EDITOR),
    "POST /contracts/<int:contract_id>/resend": entry(CONTRACT_EDITOR),
    "POST /contracts/<int:contract_id>/unlock": entry(CONTRACT_EDITOR),
    "POST /contracts/<int:contract_id>/access-code": entry(CONTRACT_EDITOR),
    "POST /contracts/<int:contract_id>/download-links": entry(CONTRACT_EDITOR),
    # Preservation (電帳法)
    "GET /preservation/contracts/<int:contract_id>/history": entry(CONTRACT_VIEWER),
    "GET /preservation/contracts/<int:contract_id>/correct": entry(CONTRACT_EDITOR),
    "POST /preservation/contracts/<int:contract_id>/correct": entry(CONTRACT_EDITOR),
    "GET /preservation/contracts/<int:contract_id>/delete": entry(ADMIN),
    "POST /preservation/contracts/<int:contract_id>/delete": entry(ADMIN),
    "GET /preservation/retention": entry(ADMIN),
    "POST /preservation/retention": entry(ADMIN),
    "GET /preservation/tombstones": entry(AUDITOR),
    "GET /preservation/verification": entry(AUDITOR),
    "POST /preservation/verification": entry(AUDITOR),
    "GET /preservation/verification/<int:run_id>": entry(AUDITOR),
    "GET /preservation/verification/<int:run_id>/report.csv": entry(AUDITOR),
    # The operation log (監査)
    "GET /audit/": entry(AUDITOR),
    "GET /audit/export.csv": entry(AUDITOR),
    "GET /admin/audit-integrity": entry(AUDITOR),
    # Search and exports
    "GET /search/": entry(STAFF),
    "GET /search/export.csv": entry(STAFF),
    "GET /search/export.zip": entry(STAFF),
    # Usage requests, staff side
    "GET /usage-requests/": entry(STAFF),
    # The 取引先 registry is agency-wide: every department's staff read it; auditors cannot change it.
    "GET /counterparties/": entry(STAFF),
    "GET /counterparties/<int:counterparty_id>": entry(STAFF),
    "POST /counterparties/<int:counterparty_id>/decline": entry(EDITOR),
    "POST /counterparties/<int:counterparty_id>/decline/withdraw": entry(EDITOR),
    "GET /usage-requests/<int:request_id>": entry(USAGE_REQUEST_VIEWER),
    "GET /usage-requests/<int:request_id>/form.pdf": entry(USAGE_REQUEST_VIEWER),
    "POST /usage-requests/<int:request_id>/accept": entry(USAGE_REQUEST_REVIEWER),
    "POST /usage-requests/<int:request_id>/return": entry(USAGE_REQUEST_REVIEWER),
    "GET /usage-requests/new": entry(STAFF_ROLE),
    "POST /usage-requests/new": entry(STAFF_ROLE),
    # Administration
    "GET /admin/users": entry(ADMIN),
    "POST /admin/users": entry(ADMIN),
    "GET /admin/users/<int:user_id>": entry(ADMIN),
    "POST /admin/users/<int:user_id>": entry(ADMIN),
    "POST /admin/users/<int:user_id>/active": entry(ADMIN),
    "POST /admin/users/<int:user_id>/reset-mfa": entry(ADMIN),
    "POST /admin/users/<int:user_id>/unlock": entry(ADMIN),
    "GET /admin/departments": entry(ADMIN),
    "POST /admin/departments": entry(ADMIN),
    "GET /admin/departments/<int:department_id>": entry(ADMIN),
    "POST /admin/departments/<int:department_id>": entry(ADMIN),
    "GET /admin/api-tokens": entry(ADMIN),
    "POST /admin/api-tokens": entry(ADMIN),
    "POST /admin/api-tokens/<int:token_id>/revoke": entry(ADMIN),
    "GET /admin/networks": entry(ADMIN),
    "POST /admin/networks": entry(ADMIN),
    "GET /admin/signing": entry(ADMIN),
    "GET /admin/backups": entry(ADMIN),
    "GET /admin/mail/": entry(ADMIN),
    "GET /admin/mail/<int:message_id>": entry(ADMIN),
    "POST /admin/mail/<int:message_id>/send": entry(ADMIN),
    "POST /admin/mail/send-held": entry(ADMIN),
    "GET /admin/webhooks": entry(ADMIN),
    "POST /admin/webhooks": entry(ADMIN),
    "GET /admin/webhooks/<int:endpoint_id>": entry(ADMIN),
    "POST /admin/webhooks/<int:endpoint_id>": entry(ADMIN),
    "POST /admin/webhooks/<int:endpoint_id>/delete": entry(ADMIN, endpoint_id="spare_endpoint_id"),
    "POST /admin/webhooks/<int:endpoint_id>/secret": entry(ADMIN),
    "POST /admin/webhooks/deliveries/<int:delivery_id>/retry": entry(ADMIN),
    # JSON API
    "GET /api/v1/contracts": entry(API),
    "GET /api/v1/search": entry(API),
    "POST /api/v1/contracts": entry(API),
    "GET /api/v1/contracts/<int:contract_id>": entry(API),
    "GET /api/v1/contracts/<int:contract_id>/documents/<int:n>": entry(API),
    "POST /api/v1/contracts/<int:contract_id>/approve": entry(API_APPROVER),
    "POST /api/v1/contracts/<int:contract_id>/send": entry(API),
}

# Those who may not see contract A, except through A's own links (which other_signer does not hold).
MAY_NOT_SEE_A = ("other_staff", "other_signer")
ARGUMENT = re.compile(r"<(?:\w+:)?(\w+)>")
JAPANESE = re.compile("[\u3040-\u30ff\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def world(database_url: str, pki_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MatrixWorld]:
    yield from build(database_url, tmp_path_factory.mktemp("matrix") / "instance", pki_dir)


def url_map_routes(world: MatrixWorld) -> set[str]:
    """ "METHOD rule" for every route but static files."""
    return {f"{method} {rule.rule}" for rule in world.app.url_map.iter_rules()
            if rule.endpoint != "static" and not rule.endpoint.endswith(".static")
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})}


def test_every_route_has_an_entry(world: MatrixWorld) -> None:
    routes = url_map_routes(world)
    missing, stale = sorted(routes - MATRIX.keys()), sorted(MATRIX.keys() - routes)
    assert not missing, "routes without an entry in the access matrix (add one to MATRIX): " + ", ".join(missing)
    assert not stale, "entries of the access matrix for routes that no longer exist: " + ", ".join(stale)


def url_for_entry(world: MatrixWorld, rule: str, entry_: Entry, principal: str) -> str:
    values = {**world.values}
    for name, value in entry_.values:
        values[name] = world.values.get(value, value) if isinstance(value, str) else value
    if entry_.token:
        values["token"] = world.tokens[entry_.token][principal]
    return ARGUMENT.sub(lambda m: str(values[m.group(1)]), rule)


def answer(response: TestResponse) -> str:
    """What kind of answer a response is, in the matrix's words."""
    status, problem = response.status_code, response.mimetype == "application/problem+json"
    if 300 <= status < 400:
        return LOGIN if urlsplit(response.headers.get("Location", "")).path == "/login" else OK
    if status == 401:
        return UNAUTHORIZED if problem and "WWW-Authenticate" in response.headers else "401 without problem+json"
    if status == 403:
        if problem:
            return API_FORBIDDEN
        page = response.get_data(as_text=True) if response.mimetype == "text/html" else ""
        return FORBIDDEN if "error-page" in page and JAPANESE.search(page) else "403 without the Japanese error page"
    if status == 404:
        return NOT_FOUND
    if status >= 500:
        return f"{status} server error"
    return OK


def _order(key: str) -> tuple[int, str]:
    """GETs first, then POSTs; logging out last."""
    method, rule = key.split(" ", 1)
    return (2 if rule == "/logout" else 0 if method == "GET" else 1, key)


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_each_route_answers_as_the_matrix_says(world: MatrixWorld, principal: str) -> None:
    client, token = world.clients[principal], world.csrf[principal]
    wrong = []
    for key in sorted(MATRIX, key=_order):
        method, rule = key.split(" ", 1)
        entry_ = MATRIX[key]
        url = url_for_entry(world, rule, entry_, principal)
        if method == "GET":
            response = client.get(url)
        else:
            response = client.post(url, data={"csrf_token": token}, headers={"X-CSRFToken": token})
        body = response.get_data()  # all of it: a streamed export closes its cursor at the end
        expected, got = entry_.policy[principal], answer(response)
        if got != expected:
            wrong.append(f"  {key}  ({url}): expected {expected}, got {got} (HTTP {response.status_code})")
        elif principal in MAY_NOT_SEE_A and (entry_.token is None or principal == "other_signer") \
                and SECRET_A in body.decode(errors="ignore"):
            wrong.append(f"  {key}  ({url}): answered with contract A's contents")
    assert not wrong, f"{principal}: {len(wrong)} answers differ from the access matrix:\n" + "\n".join(wrong)
