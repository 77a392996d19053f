"""合意締結証明書 (R4, R18): archival PDF, signed by the service key plus a document timestamp (B-LTA), listing the
sender, every signer with how they signed, and each document's SHA-256 before and after signing."""

from __future__ import annotations

import hashlib
import re
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from portal.contracts.signatures import context, verify_bytes
from portal.formatting import jst_wareki
from tests.conftest import require_tool
from tests.pdfs import make_pdf
from tests.printing.pdfcheck import assert_archival, require_font, run_tool
from tests.signing.conftest import pdfsig_results, run, signed_parts
from tests.signing.test_pades import openssl_cms_verify

PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"


def _no_space(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _completed_with_rare_names(world):
    world.signer_client.environ_base["HTTP_USER_AGENT"] = PHONE
    documents = (make_pdf("Agreement", 2), make_pdf("Specification"))
    contract_id = world.completed_contract(*documents, counterparty_name="株式会社𠮷野家",
                                           signer_name="﨑山 太郎", signer_title="代表取締役")
    return contract_id, documents


def _certificate(world, contract_id):
    path = world.download_path("yamada@keiyaku-shoji.co.jp")
    contract = world.contract(contract_id)
    data = world.signer_client.get(f"{path}/certificate").data
    delivered = {d.id: world.signer_client.get(f"{path}/documents/{d.id}").data for d in contract.documents}
    return contract, data, delivered


def test_certificate_is_archival_and_lists_sender_signers_and_hashes(app, world):
    require_font()
    contract_id, uploaded = _completed_with_rare_names(world)
    contract, data, delivered = _certificate(world, contract_id)
    assert hashlib.sha256(data).hexdigest() == contract.certificate_sha256
    assert_archival(data)
    text = run_tool("pdftotext", data)
    for exact in ("合意締結証明書", "株式会社𠮷野家", "髙橋 一郎", "総務部 契約課", "﨑山 太郎", "代表取締役",
                  "岡山 花子", "契約課長", "yamada@keiyaku-shoji.co.jp", "shonin@pref.example.jp", contract.number,
                  "メール認証（署名依頼メールのリンク）", "ワンタイムパスワード（TOTP）", "金1,100,000円"):
        assert exact in text, exact
    flat = _no_space(text)
    assert _no_space(f"送信日時{jst_wareki(contract.sent_at, seconds=True)}") in flat
    counterparty, agency = contract.parties
    for party in (counterparty, agency):
        assert _no_space(f"署名日時{jst_wareki(party.signed_at, seconds=True)}") in flat
        assert _no_space(f"IPアドレス{party.signed_ip}") in flat
    assert _no_space(PHONE) in flat
    for document, original in zip(contract.documents, uploaded, strict=True):
        assert f"署名前SHA-256{hashlib.sha256(original).hexdigest()}" in flat
        assert f"締結済みSHA-256{hashlib.sha256(delivered[document.id]).hexdigest()}" in flat
        assert hashlib.sha256(delivered[document.id]).hexdigest() == document.current.sha256


def test_certificate_is_signed_by_the_service_key_with_a_document_timestamp(app, world, tmp_path):
    contract_id, _ = _completed_with_rare_names(world)
    contract, data, _ = _certificate(world, contract_id)
    with app.app_context():
        report = verify_bytes(data)
        service_cert = x509.load_der_x509_certificate(context().signer.certificate.dump())
    assert report.is_valid, report
    [signature] = [s for s in report.signatures if not s.is_document_timestamp]
    assert signature.is_signature_valid
    assert signature.is_trusted
    assert signature.is_timestamp_valid
    service_cn = service_cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert signature.signer_name == service_cn
    assert contract.number in (signature.reason or "")
    assert signature.pades_level == "B-LTA"
    assert [s.is_valid for s in report.signatures if s.is_document_timestamp] == [True]

    path = tmp_path / "certificate.pdf"
    path.write_bytes(data)
    output = subprocess.run([require_tool("pdfsig"), str(path)], capture_output=True, text=True, check=False).stdout
    # poppler 22.12 validates the service's signature; it lists the document timestamp but cannot check it.
    assert pdfsig_results(path) == ["Signature is Valid.", pdfsig_results(path)[1]], output
    assert f"Signer Certificate Common Name: {service_cn}" in output.split("Signature #2")[0], output
    assert "Signature Field Name: DocTimeStamp" in output.split("Signature #2")[1], output
    assert "Total document signed" in output.split("Signature #2")[1], output

    openssl = require_tool("openssl")
    root = tmp_path / "root.pem"
    with app.app_context():
        root.write_bytes(b"".join(x509.load_der_x509_certificate(cert.dump()).public_bytes(serialization.Encoding.PEM)
                                  for cert in context().trust_roots))
    signature_part, timestamp_part = signed_parts(data)
    (tmp_path / "content.bin").write_bytes(signature_part.signed_bytes)
    (tmp_path / "signature.der").write_bytes(signature_part.cms_der)
    result = openssl_cms_verify(openssl, tmp_path / "signature.der", tmp_path / "content.bin", root, tmp_path)
    assert result.returncode == 0, result.stderr
    (tmp_path / "timestamp.der").write_bytes(timestamp_part.cms_der)
    result = run([openssl, "ts", "-verify", "-in", str(tmp_path / "timestamp.der"), "-token_in",
                  "-digest", hashlib.sha256(timestamp_part.signed_bytes).hexdigest(), "-CAfile", str(root)])
    assert "Verification: OK" in result.stdout, result.stderr + result.stdout
