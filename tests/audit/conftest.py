"""Audit tests use the signing tests' session PKI: its built-in TSA stamps the checkpoints."""

from __future__ import annotations

from typing import Any

import pytest

from tests.signing.conftest import pki_dir, signing_settings  # noqa: F401  (fixtures)


@pytest.fixture
def app_config(signing_settings: dict[str, Any]) -> dict[str, Any]:  # noqa: F811
    return {key: signing_settings[key] for key in ("PKI_DIR", "PUBLIC_BASE_URL", "AGENCY_NAME", "SERVICE_NAME")}
