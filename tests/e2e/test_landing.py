"""The landing page a vendor reaches from the agency's web site: what they can do, on a phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Pages
from tests.e2e.support import check_accessibility

pytestmark = pytest.mark.e2e


def test_an_anonymous_visitor_sees_what_they_can_do(pages: Pages) -> None:
    page = pages.phone()
    page.goto("/")
    for name in ["電子契約利用申出書を提出する（事業者の方）", "署名済みPDFを検証する", "職員ログイン", "困ったときは"]:
        expect(page.get_by_role("link", name=name).first).to_be_visible(timeout=2_000)
    check_accessibility(page, "landing page (phone)")
