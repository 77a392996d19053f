"""The staff manual's pictures (docs/manual-staff.md): one walk through the work, from a 利用申出書 to the
operation log, in headless Chromium at 1366×768 (the vendor's pages on a 390×844 phone), each screen
photographed as the manual shows it.

The walk fails when the manual shows a picture it did not take, or takes one the manual does not show.
Each PNG is reduced to a 128-colour palette (text stays sharp) and must stay within MAX_BYTES.
Regenerate the committed files with `UPDATE_SCREENSHOTS=1 .venv/bin/pytest tests/e2e/test_manual_screenshots.py`
(docs/screenshots/README.md).
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from PIL import Image  # Pillow comes with fpdf2, a dependency of the portal
from playwright.sync_api import Locator, Page, expect
from sqlalchemy.orm import Session

from portal.auth.models import Role
from tests.e2e.conftest import Pages
from tests.e2e.steps import (
    ContractDraft,
    Vendor,
    apply_and_confirm,
    complete_signing,
    confirm_dialogs,
    fill_contract_form,
    log_in,
    send_contract,
    staff_pair,
    upload_with_file_chooser,
    write_pdfs,
)
from tests.e2e.support import SCREENSHOT_DIR, Mailbox
from tests.factories import make_staff

pytestmark = pytest.mark.e2e

MANUAL = SCREENSHOT_DIR.parent / "manual-staff.md"
MAX_BYTES = 150 * 1024
DESK = (1366, 768)
IMAGE_RE = re.compile(r"!\[[^\]]*\]\(screenshots/(manual-[a-z0-9-]+)\.png\)")


@pytest.fixture
def app_config(app_config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """The e2e settings, with a backup key: the バックアップ picture shows a verified backup, not the warning."""
    return {**app_config, "BACKUP_DIR": str(tmp_path / "backups"), "BACKUP_PASSPHRASE": "manual screenshots key",
            "BACKUP_TIME": "02:30"}


def manual_pictures() -> set[str]:
    """The names of the manual's own screenshots (manual-*.png) that docs/manual-staff.md shows."""
    return set(IMAGE_RE.findall(MANUAL.read_text(encoding="utf-8")))


class Camera:
    """Takes the manual's screenshots: into docs/screenshots/ with UPDATE_SCREENSHOTS=1, else a scratch folder."""

    def __init__(self) -> None:
        update = os.environ.get("UPDATE_SCREENSHOTS") == "1"
        self.folder = SCREENSHOT_DIR if update else Path(os.environ.get("E2E_OUTPUT_DIR",
                                                                        "/tmp/keiyaku-e2e-screenshots"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.taken: dict[str, int] = {}

    def shoot(self, page: Page, name: str, *, part: Locator | None = None) -> None:
        """The viewport (or only `part` of the page, e.g. one panel), in CSS pixels."""
        page.wait_for_load_state("networkidle")
        options = {"animations": "disabled", "caret": "initial", "scale": "css"}
        raw = part.screenshot(**options) if part is not None else page.screenshot(**options)  # type: ignore[arg-type]
        data = small_png(raw)
        (self.folder / f"{name}.png").write_bytes(data)
        self.taken[name] = len(data)


def small_png(raw: bytes) -> bytes:
    image = Image.open(io.BytesIO(raw)).convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def test_the_manuals_screenshots(pages: Pages, session: Session, mailbox: Mailbox, app: Flask,
                                 tmp_path: Path) -> None:
    staff, approver = staff_pair(session)
    auditor = make_staff(session, role=Role.AUDITOR, email="kansa@pref.example.jp", name="監査 次郎",
                         department=staff.department)
    admin = make_staff(session, role=Role.ADMIN, email="admin@pref.example.jp", name="管理 花子",
                       department=staff.department)
    session.commit()
    camera = Camera()
    vendor = Vendor()
    draft = ContractDraft()

    # 申出書: the vendor applies; staff find it in 利用申出 and accept it.
    receipt = apply_and_confirm(pages.desk(*DESK), mailbox, vendor, staff.department.name)
    desk = pages.desk(*DESK)
    log_in(desk, staff)
    desk.goto("/usage-requests/")
    camera.shoot(desk, "manual-usage-requests")
    desk.get_by_role("link", name=receipt).click()
    desk.locator("#review-panel").scroll_into_view_if_needed()
    camera.shoot(desk, "manual-usage-request-review", part=desk.locator("#review-panel"))
    desk.get_by_role("button", name="受け付ける").click()
    expect(desk.locator("#review-panel")).to_contain_text("受付済")

    # 契約の作成, 文書のアップロード, 承認の依頼.
    desk.goto("/contracts/new")
    desk.get_by_label("取引先の名称（一部でも可）").fill(draft.counterparty_name[-4:])
    expect(desk.locator("#counterparty-results").get_by_role("link", name=draft.counterparty_name)).to_be_visible()
    camera.shoot(desk, "manual-counterparty-picker", part=desk.locator("#counterparty-picker"))
    fill_contract_form(desk, draft, approver)
    camera.shoot(desk, "manual-contract-new")
    desk.get_by_role("button", name="下書きを保存").click()
    expect(desk.get_by_role("heading", name=re.compile(re.escape(draft.business_name)))).to_be_visible()
    contract_url = desk.url
    upload_with_file_chooser(desk, write_pdfs(tmp_path / "pdfs"))
    camera.shoot(desk, "manual-documents", part=desk.locator("#documents"))
    desk.get_by_role("button", name="承認を依頼する").click()
    expect(desk.get_by_text("承認待ち").first).to_be_visible()

    # 決裁: the approver confirms the documents against the 決裁.
    approver_desk = pages.desk(*DESK)
    log_in(approver_desk, approver)
    expect(approver_desk.locator("#todo-approval")).to_contain_text(draft.business_name)
    camera.shoot(approver_desk, "manual-home-approver")
    approver_desk.goto(contract_url)
    approver_desk.get_by_label("決裁番号（決裁日）").fill(draft.reference)
    camera.shoot(approver_desk, "manual-approval", part=approver_desk.locator("#status-panel"))
    approver_desk.get_by_role("button", name="文書が決裁どおりであることを確認する").click()
    expect(approver_desk.locator("#status-panel")).to_contain_text("決裁確認済み")

    # 送信, then 署名状況 on the contract page.
    desk.reload()
    confirm_dialogs(desk)
    camera.shoot(desk, "manual-send", part=desk.locator("#status-panel"))
    desk.get_by_role("button", name="署名依頼を送信する").click()
    expect(desk.get_by_text("署名依頼を送信しました。")).to_be_visible()
    desk.reload()
    camera.shoot(desk, "manual-signing-status")
    desk.locator("#sender-tools").scroll_into_view_if_needed()
    camera.shoot(desk, "manual-sender-tools", part=desk.locator("#sender-tools"))
    desk.goto("/")
    expect(desk.locator("#todo-awaiting-vendor")).to_contain_text(draft.business_name)
    camera.shoot(desk, "manual-home")
    desk.goto(contract_url)

    # The vendor signs on a phone, the approver from the mail; the contract is 締結済み.
    phone = pages.phone()
    phone.goto(mailbox.link(mailbox.wait_for(vendor.authority_email, "への署名依頼が届いています"), "/s/"))
    expect(phone.get_by_role("heading", name=draft.business_name)).to_be_visible()
    camera.shoot(phone, "manual-vendor-signing-phone")
    phone.get_by_role("link", name="困ったときは").tap()
    expect(phone.locator("#acrobat")).to_contain_text("署名の有効性は不明です")
    camera.shoot(phone, "manual-vendor-help-phone", part=phone.locator("#acrobat"))
    phone.go_back()
    complete_signing(phone, where="vendor (manual)")
    approver_desk.goto(mailbox.link(mailbox.wait_for(approver.email, "【署名依頼】"), "/s/staff/"))
    complete_signing(approver_desk, where="approver (manual)")
    completion = mailbox.wait_for(vendor.authority_email, "電子署名完了のお知らせ", timeout=30)
    phone.goto(mailbox.link(completion, "/d/"))
    camera.shoot(phone, "manual-vendor-download-phone")
    desk.goto(contract_url)
    expect(desk.get_by_text("締結済み").first).to_be_visible()
    camera.shoot(desk, "manual-contract-completed")
    desk.locator("#sender-tools").scroll_into_view_if_needed()
    camera.shoot(desk, "manual-reissue-download-link", part=desk.locator("#sender-tools"))

    # 紙契約への移行・取消 on another sent contract.
    send_contract(app, session, mailbox, staff, approver, business_name="令和8年度 公用車リース")
    desk.goto("/contracts/")
    camera.shoot(desk, "manual-contract-list")
    desk.locator("tr", has_text="公用車リース").get_by_role("link").first.click()
    desk.locator("#status-panel summary").click()
    desk.get_by_label("理由").fill("締結予定日までに電子署名が完了しないため")
    camera.shoot(desk, "manual-paper-or-cancel", part=desk.locator("#status-panel"))

    # 検索と出力.
    desk.goto("/search/?counterparty=けいやく")
    expect(desk.locator("#search-results")).to_contain_text("件")
    camera.shoot(desk, "manual-search")

    # 操作ログ and 一括検証 (監査担当), バックアップ (管理者).
    auditor_desk = pages.desk(*DESK)
    log_in(auditor_desk, auditor)
    auditor_desk.goto("/audit/")
    camera.shoot(auditor_desk, "manual-audit-log")
    auditor_desk.goto("/preservation/verification")
    camera.shoot(auditor_desk, "manual-verification")
    key_file = tmp_path / "keys" / "backup.key"
    key_file.parent.mkdir()
    key_file.write_text("manual screenshots key\n")
    made = app.test_cli_runner().invoke(args=["backup", "create", "--key-file", str(key_file)])
    assert made.exit_code == 0, made.output
    admin_desk = pages.desk(*DESK)
    log_in(admin_desk, admin)
    admin_desk.goto("/admin/backups")
    expect(admin_desk.locator("main")).to_contain_text("問題なし")
    camera.shoot(admin_desk, "manual-backup", part=admin_desk.locator("#backup-status"))  # not the test's folder

    too_large = {name: size for name, size in camera.taken.items() if size > MAX_BYTES}
    assert not too_large, f"screenshots over {MAX_BYTES} bytes: {too_large}"
    shown, taken = manual_pictures(), set(camera.taken)
    assert not shown - taken, f"the manual shows pictures this walk does not take: {shown - taken}"
    assert not taken - shown, f"pictures the manual does not show: {taken - shown}"
