"""Document titles on the signing page, file sizes, download names (RFC 5987) and the ZIP of all documents."""

from __future__ import annotations

import io
import re
import zipfile
from urllib.parse import quote

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import stream_encode_multipart

from portal.contracts.models import ContractDocument
from tests.conftest import csrf_from
from tests.pdfs import make_pdf


def _upload(world, contract_id: int, files: list[tuple[bytes, str]], title: str = ""):
    client = world.staff_client
    token = csrf_from(client.get(f"/contracts/{contract_id}").get_data(as_text=True))
    data = MultiDict([("csrf_token", token), ("title", title)] + [
        ("files", FileStorage(io.BytesIO(content), filename=name, content_type="application/pdf"))
        for content, name in files])
    body, length, boundary = stream_encode_multipart(data, use_tempfile=False)
    return client.post(f"/contracts/{contract_id}/documents", input_stream=body, content_length=length,
                       content_type=f"multipart/form-data; boundary={boundary}")


def _sent_with_titles(world, **overrides) -> tuple[int, str]:
    contract_id = world.create_id(**overrides)
    first = _upload(world, contract_id, [(make_pdf("terms", 2), "01_keiyakusho.pdf")], title=" 契約書 ")
    assert first.status_code == 200
    assert _upload(world, contract_id, [(make_pdf("spec"), "02_shiyousho.pdf")]).status_code == 200
    assert world.approve(contract_id).status_code == 303
    assert world.send(contract_id).status_code == 303
    return contract_id, world.contract(contract_id).number


def _disposition_name(response) -> str:
    header = response.headers["Content-Disposition"]
    assert "filename*=UTF-8''" in header  # RFC 5987, with an ASCII fallback for old clients
    return header


def test_tabs_show_titles_and_sizes_and_downloads_are_named_after_the_contract(world):
    contract_id, number = _sent_with_titles(world)
    link = world.signing_link()
    html = world.signer_client.get(link).get_data(as_text=True)
    assert ">1. 契約書</a>" in html
    assert ">2. 02_shiyousho</a>" in html
    assert "01_keiyakusho.pdf" not in html
    assert re.search(r"ページ・PDF \d+ (B|KB)）", html)
    first, _ = world.contract(contract_id).documents

    original = world.signer_client.get(f"{link}/documents/{first.id}/original")
    assert original.data == make_pdf("terms", 2)
    assert quote(f"{number}_契約書.pdf") in _disposition_name(original)

    archive = world.signer_client.get(f"{link}/documents.zip")
    assert archive.mimetype == "application/zip"
    assert quote(f"{number}_文書一式.zip") in _disposition_name(archive)
    with zipfile.ZipFile(io.BytesIO(archive.data)) as opened:
        assert opened.namelist() == [f"{number}_契約書.pdf", f"{number}_02_shiyousho.pdf"]
        assert opened.read(f"{number}_02_shiyousho.pdf") == make_pdf("spec")

    world.sign_as_counterparty(link)
    signed = world.staff_client.get(f"/contracts/{contract_id}/documents/{first.id}/download")
    assert quote(f"{number}_契約書_署名済.pdf") in _disposition_name(signed)
    unsigned = world.staff_client.get(f"/contracts/{contract_id}/documents/{first.id}/download?revision=1")
    assert quote(f"{number}_契約書.pdf") in _disposition_name(unsigned)


def test_the_zip_needs_the_access_code_too(world):
    _sent_with_titles(world, access_code="4821")
    link = world.signing_link()
    response = world.signer_client.get(f"{link}/documents.zip")
    assert response.status_code == 403
    assert response.mimetype == "text/html"


def test_the_completion_download_is_marked_signed(world):
    contract_id = world.completed_contract(make_pdf("a"))
    number = world.contract(contract_id).number
    path = world.download_path("yamada@keiyaku-shoji.co.jp")
    document = world.contract(contract_id).documents[0]
    response = world.signer_client.get(f"{path}/documents/{document.id}")
    assert quote(f"{number}_doc1_署名済.pdf") in _disposition_name(response)


@pytest.mark.parametrize(("title", "message"), [
    ("長" * 101, "100文字以内"),
    ("契約書\x1b[31m", "制御文字"),
    ("契約\u202e書", "制御文字"),
    ("../../etc/passwd", "記号は使えません"),
    ("<script>alert(1)</script>", "記号は使えません"),
])
def test_a_hostile_title_is_refused_and_nothing_is_added(world, title, message):
    contract_id = world.create_id()
    response = _upload(world, contract_id, [(make_pdf("a"), "a.pdf")], title=title)
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert message in text
    assert "<script>alert" not in text
    world.refresh()
    assert world.session.scalar(select(func.count()).select_from(ContractDocument)) == 0


def test_a_title_with_several_files_is_refused(world):
    contract_id = world.create_id()
    response = _upload(world, contract_id, [(make_pdf("a"), "a.pdf"), (make_pdf("b"), "b.pdf")], title="契約書")
    assert response.status_code == 422
    assert "1件ずつ" in response.get_data(as_text=True)
    world.refresh()
    assert world.session.scalar(select(func.count()).select_from(ContractDocument)) == 0
