"""The built-in PKI's certificate profiles, file modes and CRL."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from portal.signing import pki as local_pki
from portal.signing.context import SigningContext

ROOT_CRL_URL = "http://portal.test/pki/crl/root.crl"


def _pki(context: SigningContext) -> local_pki.LocalPki:
    assert context.pki is not None
    return context.pki


def test_private_keys_are_readable_by_the_owner_only(context: SigningContext) -> None:
    for name in ("root", "signing", "tsa"):
        mode = stat.S_IMODE((_pki(context).directory / f"{name}.key").stat().st_mode)
        assert mode == 0o600, name


def test_signing_certificate_names_the_agency_and_lasts_one_to_three_years(context: SigningContext) -> None:
    cert = _pki(context).signing_cert

    assert cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value == "テスト市"
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=365) <= lifetime <= dt.timedelta(days=3 * 366)
    crl_dp = cert.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS).value
    assert crl_dp[0].full_name[0].value == ROOT_CRL_URL


def test_tsa_certificate_has_critical_time_stamping_eku_and_our_policy(context: SigningContext) -> None:
    cert = _pki(context).tsa_cert

    eku = cert.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE)
    assert eku.critical
    assert list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    policies = cert.extensions.get_extension_for_oid(ExtensionOID.CERTIFICATE_POLICIES).value
    assert policies[0].policy_identifier == local_pki.TSA_POLICY_OID


def test_crl_is_signed_by_the_root_and_refreshed_when_old(context: SigningContext) -> None:
    pki = _pki(context)
    crl = x509.load_der_x509_crl(local_pki.current_crl(pki))
    assert crl.is_signature_valid(pki.root_cert.public_key())

    later = crl.last_update_utc + local_pki.CRL_REFRESH_AFTER + dt.timedelta(seconds=1)
    refreshed = x509.load_der_x509_crl(local_pki.current_crl(pki, now=later))

    assert refreshed.last_update_utc == later


def test_existing_pki_is_loaded_not_recreated(context: SigningContext) -> None:
    pki = _pki(context)

    again = local_pki.ensure_local_pki(
        pki.directory, agency_name="別の市", service_name="別", base_url="http://other.test"
    )

    assert again.root_cert == pki.root_cert


def test_signing_years_outside_one_to_three_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="between 1 and 3"):
        local_pki.ensure_local_pki(tmp_path, agency_name="市", service_name="s", base_url="http://x", signing_years=5)
