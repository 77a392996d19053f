"""The search screen over HTTP: htmx partials, the URL as the query, CSV/ZIP exports, the JSON API."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.audit.models import AuditEvent
from portal.auth.models import ApiToken
from portal.contracts.models import ContractStatus
from portal.search.export import CSV_COLUMNS
from portal.tokens import new_token
from tests.conftest import reread
from tests.factories import login_as
from tests.search.conftest import World
from tests.search.factories import make_contract


def test_page_keeps_the_query_and_htmx_gets_only_the_results(client: FlaskClient, world: World) -> None:
    login_as(client, world.staff_a)

    page = client.get("/search/?counterparty=%E3%88%B1%E3%82%B1%E3%82%A4%E3%83%A4%E3%82%AF&date_from=R1.5.1")
    partial = client.get("/search/?counterparty=けいやく", headers={"HX-Request": "true"})

    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'value="R1.5.1"' in html
    assert 'hx-push-url="true"' in html
    assert "<html" in html
    assert "A-2019-0002" in html
    assert "A-2019-0001" not in html
    body = partial.get_data(as_text=True)
    assert "<html" not in body
    assert body.lstrip().startswith("{#") is False
    assert 'id="search-results"' in body
    assert "A-2019-0001" in body
    assert "HX-Request" in partial.headers["Vary"]


def test_sort_and_page_links_carry_the_query(client: FlaskClient, world: World) -> None:
    login_as(client, world.auditor)

    html = client.get("/search/?counterparty=ケイヤク&per_page=2").get_data(as_text=True)

    assert "sort=amount" in html
    assert "counterparty=%E3%82%B1%E3%82%A4%E3%83%A4%E3%82%AF" in html
    assert 'rel="next"' in html
    assert "page=2" in html


def test_unreadable_date_is_explained_with_422(client: FlaskClient, world: World) -> None:
    login_as(client, world.staff_a)

    response = client.get("/search/?date_from=平成31年5月1日", headers={"HX-Request": "true"})

    assert response.status_code == 422
    assert "平成の期間" in response.get_data(as_text=True)


def test_other_departments_contracts_do_not_appear(client: FlaskClient, world: World) -> None:
    login_as(client, world.staff_b)

    html = client.get("/search/?counterparty=ケイヤク").get_data(as_text=True)

    assert "B-2025-0001" in html
    assert "A-2019-0001" not in html


def test_csv_export_has_bom_and_the_columns(client: FlaskClient, session: Session, world: World) -> None:
    login_as(client, world.auditor)

    response = client.get("/search/export.csv?counterparty=ケイヤク&sort=date&order=asc")

    data = response.get_data()
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert data.startswith(b"\xef\xbb\xbf")
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == CSV_COLUMNS == ["取引年月日", "金額(税込)", "税額", "金額(税抜)", "取引先", "業務名", "契約番号",
                                      "ファイル名", "SHA-256", "締結日時", "タイムスタンプ時刻", "契約の種類", "状態",
                                      "変更前の契約番号"]
    assert [r[6] for r in rows[1:]] == ["A-2019-0001", "A-2019-0002", "B-2025-0001"]
    first = rows[1]
    assert first[:8] == ["2019-04-30", "1100000", "100000", "1000000", "株式会社ケイヤク商事", "庁舎清掃業務",
                         "A-2019-0001", "A-2019-0001.pdf"]
    assert len(first[8]) == 64
    assert first[9] == "2019-04-30T12:00:00+09:00"
    exported = reread(session).scalars(select(AuditEvent).where(AuditEvent.action == "staff:search:exported")).all()
    assert len(exported) == 1
    assert exported[0].details["count"] == 3


def test_zip_export_holds_the_pdfs_and_the_csv(client: FlaskClient, world: World) -> None:
    login_as(client, world.staff_a)

    response = client.get("/search/export.zip?date_from=2019-04-30&date_to=2019-05-01")

    archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
    assert sorted(archive.namelist()) == ["A-2019-0001/A-2019-0001.pdf", "A-2019-0002/A-2019-0002.pdf", "一覧.csv"]
    assert archive.read("A-2019-0001/A-2019-0001.pdf").startswith(b"%PDF")
    assert archive.read("一覧.csv").startswith(b"\xef\xbb\xbf")


def test_json_api_applies_the_same_filters_in_the_tokens_scope(client: FlaskClient, session: Session,
                                                               world: World) -> None:
    from portal import clock

    token, token_hash = new_token()
    session.add(ApiToken(user_id=world.staff_a.id, token_hash=token_hash, label="test", created_at=clock.now()))
    session.commit()

    response = client.get("/api/v1/search?counterparty=㈱ケイヤク&date_from=令和元年5月1日",
                          headers={"Authorization": f"Bearer {token}"})
    refused = client.get("/api/v1/search?date_from=H31.5.1", headers={"Authorization": f"Bearer {token}"})
    anonymous = client.get("/api/v1/search")

    body = response.get_json()
    assert [c["number"] for c in body["contracts"]] == ["A-2019-0002"]
    assert body["contracts"][0]["tax_excluded_amount"] == 500_000
    assert refused.status_code == 422
    assert "date_from" in refused.get_json()["errors"]
    assert anonymous.status_code == 401


@pytest.mark.parametrize("hostile", ['=HYPERLINK("http://evil.example","請求書")', "+1+1", "-2+3", "@SUM(A1)",
                                     "\tTAB", "＝１＋１"])
def test_csv_cells_that_would_start_a_formula_stay_text(client: FlaskClient, session: Session, world: World,
                                                       hostile: str) -> None:
    make_contract(session, number="A-2026-0099", department=world.department_a, created_by=world.staff_a,
                  transaction_date=date(2026, 4, 1), amount=-5000, tax_amount=0, counterparty_name=hostile,
                  business_name=hostile, status=ContractStatus.COMPLETED)
    login_as(client, world.auditor)

    data = client.get("/search/export.csv?number=A-2026-0099").get_data()

    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    line = next(r for r in rows[1:] if r[6] == "A-2026-0099")
    assert line[4] == f"'{hostile}"
    assert line[5] == f"'{hostile}"
    assert line[1] == "-5000"  # amounts stay numbers
