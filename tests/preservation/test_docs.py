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
    assert "size: A4" in html
    assert "<table>" in html


@pytest.mark.parametrize("name", ["../README", "deploy", "nothing"])
def test_other_files_are_not_served(client: FlaskClient, name: str) -> None:
    assert client.get(f"/help/docs/{name}").status_code == 404
