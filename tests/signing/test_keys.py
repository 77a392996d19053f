"""Production keys: a PKCS#12 file and a non-extractable key in SoftHSM2 through PKCS#11."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from portal.signing import pki as local_pki
from portal.signing import service
from portal.signing.context import SigningContext
from portal.signing.errors import SigningKeyUnavailable
from portal.signing.pades import Approval, finalize, sign_approval, verify
from portal.signing.signer import Pkcs11Signer
from tests.signing.conftest import require, require_tool, run

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN_LABEL = "keiyaku-test"
KEY_LABEL = "service-signing"
USER_PIN = "246810"


def _pkcs12_settings(signing_settings: dict[str, Any], path: Path, context: SigningContext, *, passphrase: bytes,
                    given: str, chain: bool) -> dict[str, Any]:
    """Write the local service key as a PKCS#12 file and return settings that load it with `given`."""
    assert context.pki is not None
    path.write_bytes(pkcs12.serialize_key_and_certificates(
        b"service", context.pki.signing_key, context.pki.signing_cert,
        [context.pki.root_cert] if chain else None, serialization.BestAvailableEncryption(passphrase),
    ))
    return {**signing_settings, "SIGNING_BACKEND": "pkcs12", "SIGNING_PKCS12_PATH": str(path),
            "SIGNING_PKCS12_PASSPHRASE": given}


def test_pkcs12_signer_signs_and_validates(
    tmp_path: Path, signing_settings: dict[str, Any], context: SigningContext, pdf: bytes, approval: Approval
) -> None:
    settings = _pkcs12_settings(signing_settings, tmp_path / "service.p12", context,
                                passphrase=b"correct passphrase", given="correct passphrase", chain=True)

    signed = sign_approval(pdf, approval, context=service.build_context(settings))

    assert verify(signed, context=context).is_valid


def test_pkcs12_with_wrong_passphrase_says_what_went_wrong(
    tmp_path: Path, signing_settings: dict[str, Any], context: SigningContext
) -> None:
    settings = _pkcs12_settings(signing_settings, tmp_path / "service.p12", context,
                                passphrase=b"right", given="wrong", chain=False)

    with pytest.raises(SigningKeyUnavailable) as error:
        service.build_context(settings)

    assert "パスフレーズが誤っている" in error.value.message


@pytest.fixture(scope="module")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory, context: SigningContext) -> Iterator[dict[str, str]]:
    """A SoftHSM2 token with a non-extractable RSA key generated inside it, certified by the local CA."""
    util = require_tool("softhsm2-util")
    require(Path(SOFTHSM_MODULE).exists(), f"{SOFTHSM_MODULE} is missing (apt-get install softhsm2)")
    import pkcs11
    from pkcs11 import Attribute, KeyType

    assert context.pki is not None
    directory = tmp_path_factory.mktemp("softhsm")
    (directory / "tokens").mkdir()
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {directory / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    result = run([util, "--init-token", "--free", "--label", TOKEN_LABEL, "--pin", USER_PIN, "--so-pin", "13579"])
    assert result.returncode == 0, result.stderr

    token = pkcs11.lib(SOFTHSM_MODULE).get_token(token_label=TOKEN_LABEL)
    with token.open(user_pin=USER_PIN, rw=True) as session:
        public, private = session.generate_keypair(
            KeyType.RSA,
            2048,
            label=KEY_LABEL,
            store=True,
            private_template={Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: True, Attribute.SIGN: True},
        )
        assert private[Attribute.EXTRACTABLE] is False
        public_key = rsa.RSAPublicNumbers(
            int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big"),
            int.from_bytes(public[Attribute.MODULUS], "big"),
        ).public_key()
    certificate = local_pki.issue_certificate(
        context.pki, public_key, common_name="テスト市電子契約（HSM）", organization="テスト市", years=2
    )
    cert_path = directory / "hsm-signing.crt"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    yield {
        "SIGNING_BACKEND": "pkcs11",
        "SIGNING_PKCS11_MODULE": SOFTHSM_MODULE,
        "SIGNING_PKCS11_TOKEN_LABEL": TOKEN_LABEL,
        "SIGNING_PKCS11_KEY_LABEL": KEY_LABEL,
        "SIGNING_PKCS11_PIN": USER_PIN,
        "SIGNING_PKCS11_CERT_PATH": str(cert_path),
        "SIGNING_CHAIN_PATH": str(context.pki.directory / "root.crt"),
    }
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


def test_softhsm_key_signs_and_the_result_validates_at_b_lta(
    softhsm_token: dict[str, str],
    signing_settings: dict[str, Any],
    context: SigningContext,
    pdf: bytes,
    approval: Approval,
) -> None:
    hsm_context = service.build_context({**signing_settings, **softhsm_token})
    try:
        final = finalize(sign_approval(pdf, approval, context=hsm_context), context=hsm_context)
    finally:
        assert isinstance(hsm_context.signer, Pkcs11Signer)
        hsm_context.signer.close()

    report = verify(final, context=context)
    assert report.is_valid
    assert report.signatures[0].signer_name == "テスト市電子契約（HSM）"
    assert report.level == "B-LTA"


def test_wrong_hsm_pin_is_a_clear_error_and_nothing_is_written(
    softhsm_token: dict[str, str], signing_settings: dict[str, Any], pdf: bytes, approval: Approval
) -> None:
    import io

    hsm_context = service.build_context({**signing_settings, **softhsm_token, "SIGNING_PKCS11_PIN": "000000"})
    output = io.BytesIO()

    with pytest.raises(SigningKeyUnavailable) as error:
        sign_approval(pdf, approval, context=hsm_context, output=output)

    assert "PIN が正しくありません" in error.value.message
    assert output.getvalue() == b""
