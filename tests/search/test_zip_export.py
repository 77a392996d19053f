"""The ZIP export holds each completed contract's 合意締結証明書, and a paper contract's unsigned
originals marked as such in the file name, or left out on request."""

from __future__ import annotations

import io
import zipfile
from datetime import date
from urllib.parse import quote

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from portal.contracts.models import Contract, ContractStatus
from portal.search.export import CERTIFICATE_NAME, PAPER_MARK
from tests.contracts.fixtures import World
from tests.pdfs import make_pdf
from tests.search.factories import make_contract


@pytest.fixture
def exported(app: Flask, session: Session) -> tuple[World, str, str]:
    world = World(app, session)
    completed = session.get(Contract, world.completed_contract(make_pdf("Agreement", 1)))
    assert completed is not None
    make_contract(session, number="KEI-R8-7001", department=world.department, created_by=world.staff,
                  transaction_date=date(2026, 5, 1), amount=1, tax_amount=0, status=ContractStatus.PAPER,
                  documents={"契約書.pdf": make_pdf("Paper", 1)})
    return world, completed.number, "KEI-R8-7001"


def _names(world: World, query: str) -> list[str]:
    response = world.staff_client.get(f"/search/export.zip?{query}")
    assert response.status_code == 200
    return zipfile.ZipFile(io.BytesIO(response.get_data())).namelist()


def test_the_certificate_is_included_and_paper_originals_are_marked(exported: tuple[World, str, str]) -> None:
    world, completed, paper = exported

    names = _names(world, "status=completed&status=paper")

    assert f"{completed}/{CERTIFICATE_NAME}" in names
    assert f"{paper}/{PAPER_MARK}契約書.pdf" in names
    assert not any(n.startswith(f"{paper}/{CERTIFICATE_NAME}") for n in names)  # never completed: none
    assert "読み込みエラー.txt" not in names
    certificate = zipfile.ZipFile(io.BytesIO(world.staff_client.get(
        "/search/export.zip?status=completed").get_data())).read(f"{completed}/{CERTIFICATE_NAME}")
    assert certificate.startswith(b"%PDF")


def test_paper_originals_can_be_left_out(exported: tuple[World, str, str]) -> None:
    world, completed, paper = exported

    names = _names(world, "status=completed&status=paper&paper_originals=omit")

    assert not any(n.startswith(f"{paper}/") and n.endswith(".pdf") for n in names)
    assert f"{completed}/{CERTIFICATE_NAME}" in names
    listed = zipfile.ZipFile(io.BytesIO(world.staff_client.get(
        "/search/export.zip?status=paper&paper_originals=omit").get_data())).read("一覧.csv").decode("utf-8-sig")
    assert paper in listed  # still listed in the CSV


def test_a_missing_certificate_is_reported_not_hidden(exported: tuple[World, str, str], session: Session) -> None:
    world, completed, _paper = exported
    session.query(Contract).filter_by(number=completed).update({"certificate_sha256": "0" * 64})
    session.commit()

    archive = zipfile.ZipFile(io.BytesIO(world.staff_client.get("/search/export.zip?status=completed").get_data()))

    assert f"{completed}/{CERTIFICATE_NAME}" not in archive.namelist()
    assert CERTIFICATE_NAME in archive.read("読み込みエラー.txt").decode()


@pytest.mark.parametrize("hostile", ["<script>", "omit\x00", "OMIT", "x" * 5000])
def test_any_other_paper_option_keeps_the_marked_originals(exported: tuple[World, str, str], hostile: str) -> None:
    world, _completed, paper = exported

    names = _names(world, f"status=paper&paper_originals={quote(hostile)}")

    assert f"{paper}/{PAPER_MARK}契約書.pdf" in names
