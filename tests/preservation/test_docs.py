"""R27: the customer documents render as help pages (and only those files)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient


@pytest.mark.parametrize(("name", "heading"), [
    ("system-overview", "システム概要書"),
    ("manual-staff", "操作マニュアル"),
    ("office-rule-template", "事務処理規程"),
])
def test_document_renders_with_print_styles(client: FlaskClient, name: str, heading: str) -> None:
    response = client.get(f"/help/docs/{name}")

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<h1>" in html
    assert heading in html
    assert '<article class="document">' in html
    assert "<table>" in html
    # The print styles live in the stylesheet (the Content-Security-Policy allows no inline <style>).
    assert "/static/css/portal.css" in html
    stylesheet = client.get("/static/css/portal.css")
    css = stylesheet.get_data(as_text=True)
    stylesheet.close()
    assert "@page { size: A4" in css
    assert "@media print" in css


@pytest.mark.parametrize("name", ["../README", "deploy", "nothing"])
def test_other_files_are_not_served(client: FlaskClient, name: str) -> None:
    assert client.get(f"/help/docs/{name}").status_code == 404
