"""The 電子契約利用申出書 as an A4 PDF in the layout of the 別記様式: filled from an accepted request, or
blank for vendors who submit by mail or post. Both are archival PDFs (portal/printing/archival.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from portal.formatting import jst_wareki, wareki
from portal.printing.archival import ArchivalPdf, Metadata, font_file

INTRO = ("{agency}と電子契約サービスを利用して行う契約締結における契約締結権限者および契約締結に使用する"
         "メールアドレスは、次のとおりです。")
NOTES = (
    "※この様式は、契約相手方として決定された際に、速やかに県の担当者まで電子メール又は{agency}電子申請"
    "サービスにより提出してください。(押印は不要です。)",
    "※契約締結権限者は、必ずしも社内規定等における最終決裁権者でなくて構いません。あくまで電子契約サービスにより、"
    "電子契約を締結する際の最終的な承認者を設定してください。",
    "※フリーメールアドレスは不可とします。",
    "※契約予定日までに電子契約が締結できない場合は紙による契約書の作成に移行します。",
)
BLANK_DATE = "令和　　年　　月　　日"


def _agency(addressee: str) -> str:
    return addressee.removesuffix("知事").removesuffix("長") or addressee


def _form(sheet: ArchivalPdf, *, addressee: str, date_text: str, applicant: list[tuple[str, str]],
          contract_name: str, authority: list[tuple[str, str]]) -> None:
    agency = _agency(addressee)
    sheet.text("(別記様式)", size=10, gap_mm=4)
    sheet.text("電子契約利用申出書", size=16, align="C", gap_mm=6)
    sheet.text(date_text, align="R", gap_mm=4)
    sheet.text(f"{addressee} 様", size=11.5, gap_mm=6)
    sheet.rows(applicant)
    sheet.text(INTRO.format(agency=agency), gap_mm=4)
    sheet.text(f"契約業務名 {contract_name}", gap_mm=5)
    sheet.text("【契約締結権限者】※電子契約の署名者として登録されます。", gap_mm=2)
    sheet.rows(authority)
    sheet.text("【留意事項】", size=10, gap_mm=1)
    for note in NOTES:
        sheet.text(note.format(agency=agency), size=9, gap_mm=1)


def render_usage_request(usage_request: Any, *, addressee: str) -> bytes:
    """Return the A4 PDF of the 別記様式 filled with the request's values."""
    sheet = ArchivalPdf(
        Metadata(title=f"電子契約利用申出書 {usage_request.receipt_number}", author=_agency(addressee),
                 subject=usage_request.company_name),
        footer=" ／ ".join(_footer_parts(usage_request)),
    )
    _form(
        sheet, addressee=addressee, date_text=wareki(usage_request.form_date),
        applicant=[
            ("住所(所在地)", usage_request.address),
            *([("共同企業体の名称", usage_request.jv_name),
               ("構成員", "\n".join(usage_request.jv_member_list))] if usage_request.is_jv else []),
            ("代表構成員" if usage_request.is_jv else "商号(名称)", usage_request.company_name),
            ("代表者職・氏名", usage_request.representative),
            ("担当者職・氏名", usage_request.contact_person),
            ("連絡先", f"電話番号 {usage_request.contact_phone}\nメールアドレス {usage_request.contact_email}"),
        ],
        contract_name=usage_request.contract_name,
        authority=[
            ("役 職", usage_request.authority_title),
            ("氏 名", usage_request.authority_name),
            ("メールアドレス", usage_request.authority_email),
        ],
    )
    return sheet.output()


def render_blank_form(*, addressee: str) -> bytes:
    """The empty 別記様式 to print, fill in by hand and send by mail or post.

    Kept per process: it only depends on the addressee and the font, and loading the font costs seconds
    (measured in bench/printing.py), too much for a public page."""
    return _blank_form(addressee, str(font_file()))


@lru_cache(maxsize=8)
def _blank_form(addressee: str, font: str) -> bytes:
    sheet = ArchivalPdf(Metadata(title="電子契約利用申出書（別記様式）", author=_agency(addressee)))
    blank = "\n\n"
    _form(
        sheet, addressee=addressee, date_text=BLANK_DATE,
        applicant=[
            ("住所(所在地)", blank),
            ("商号(名称)", blank),
            ("代表者職・氏名", blank),
            ("担当者職・氏名", blank),
            ("連絡先", "電話番号\n\nメールアドレス\n"),
        ],
        contract_name="",
        authority=[("役 職", blank), ("氏 名", blank), ("メールアドレス", blank)],
    )
    return sheet.output()


def _footer_parts(usage_request: Any) -> Iterator[str]:
    yield f"受付番号 {usage_request.receipt_number}"
    yield f"受付方法 {usage_request.channel.label}"
    if usage_request.confirmed_at and usage_request.channel.value == "web":
        yield f"メールアドレス確認 {jst_wareki(usage_request.confirmed_at)}"
    if usage_request.reviewed_at:
        yield f"受付 {jst_wareki(usage_request.reviewed_at)}"
