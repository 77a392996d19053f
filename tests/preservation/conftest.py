"""Preservation tests reuse the signing tests' session PKI and PDF builder."""

from __future__ import annotations

from typing import Any

import pytest

from tests.search.conftest import world  # noqa: F401  (fixture)
from tests.signing.conftest import context, pki_dir, signing_settings  # noqa: F401  (fixtures)


@pytest.fixture
def app_config(signing_settings: dict[str, Any]) -> dict[str, Any]:  # noqa: F811
    # The app verifies with the same PKI the test signed with.
    return {key: signing_settings[key] for key in ("PKI_DIR", "PUBLIC_BASE_URL", "AGENCY_NAME", "SERVICE_NAME")}
