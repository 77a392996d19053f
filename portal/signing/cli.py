"""flask --app app verify FILE.pdf: the verification report on the terminal."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from . import service
from .errors import InvalidPdf
from .pades import verify
from .verification import VerificationReport, panel_lines, to_jst


def format_report(report: VerificationReport) -> str:
    """The same content as the /verify page, as plain text."""
    lines = []
    for signature in report.signatures:
        kind = "文書タイムスタンプ" if signature.is_document_timestamp else "署名"
        lines.append(f"■ リビジョン {signature.revision}: {kind} {signature.field_name}（{signature.signer_name}）")
        lines.extend(f"  {'✔' if line.is_ok else '✖'} {line.text}" for line in panel_lines(signature))
        if signature.reason:
            lines.append(f"  理由: {signature.reason}")
        lines.append(f"  署名日時: {to_jst(signature.signing_time)}")
        if signature.timestamp_time:
            lines.append(f"  タイムスタンプ: {to_jst(signature.timestamp_time)}（{signature.timestamp_authority}）")
        lines.append(f"  対象範囲: {signature.coverage}")
        if signature.pades_level:
            lines.append(f"  PAdES レベル: {signature.pades_level}")
        lines.extend(f"  注意: {problem}" for problem in signature.problems)
    lines.extend(report.problems)
    lines.append("結果: すべて有効です" if report.is_valid else "結果: 有効でない署名またはタイムスタンプがあります")
    return "\n".join(lines)


@click.command("verify")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def verify_command(path: Path) -> None:
    """Verify every signature and timestamp in PATH; exit 0 only if all are valid."""
    context = service.configure(current_app.config)
    try:
        with path.open("rb") as handle:
            report = verify(handle, context=context)
    except InvalidPdf as exc:
        click.echo(f"エラー: {exc.message}", err=True)
        sys.exit(2)
    click.echo(format_report(report))
    sys.exit(0 if report.is_valid else 1)


@click.group("pki", help="内蔵 PKI: 証明書の一覧・更新・失効")
def pki_group() -> None:
    pass


@pki_group.command("certificates", help="内蔵 PKI のすべての証明書（使用中・過去のもの）と有効期限を表示します")
@with_appcontext
def certificates_command() -> None:
    from portal import clock
    from portal.db import db

    from . import lifecycle

    local = service.ensure_pki(current_app.config)
    lines = lifecycle.certificate_overview(local, lifecycle.revocation_entries(db()), now=clock.now())
    for line in lines:
        state = "使用中" if line.is_current else "過去"
        revoked = f" 失効 {to_jst(line.revoked_at)}" if line.revoked_at else ""
        click.echo(f"{line.role_label}\t{state}\t{line.serial_hex}\t{line.not_after:%Y-%m-%d}まで{revoked}\t{line.subject}")
        if line.warning:
            click.echo(f"  注意: {line.warning}")


@pki_group.command("renew", help="期限の近い（または失効した）署名用・タイムスタンプ局の証明書を更新します")
@click.option("--force", "force", multiple=True, type=click.Choice(["signing", "tsa"]), help="期限に関係なく更新する")
@with_appcontext
def renew_command(force: tuple[str, ...]) -> None:
    from portal import clock
    from portal.db import db

    from . import lifecycle

    session = db()
    local = service.ensure_pki(current_app.config)
    renewed = lifecycle.renew_due_certificates(session, local, current_app.config, now=clock.now(), force=force)
    session.commit()
    for item in renewed:
        click.echo(f"更新しました: {item.role} {item.serial_hex}（{item.not_after:%Y-%m-%d} まで）")
    if not renewed:
        click.echo("更新が必要な証明書はありません。")


@pki_group.command("revoke", help="内蔵 PKI の証明書を失効させ、CRL を再発行します")
@click.argument("serial")
@click.option("--reason", default="unspecified",
              help="失効理由（key_compromise, superseded, cessation_of_operation など）")
@click.option("--at", "revoked_at", default=None, help="失効日時（ISO 8601、省略時は現在）")
@click.option("--as", "email", required=True, help="実行者として記録する管理者のメールアドレス")
@click.option("--note", default="", help="備考")
@with_appcontext
def revoke_command(serial: str, reason: str, revoked_at: str | None, email: str, note: str) -> None:
    import datetime as dt

    from sqlalchemy import func, select

    from portal import clock
    from portal.audit.service import Actor
    from portal.auth.models import Role, StaffUser
    from portal.db import db

    from . import lifecycle

    session = db()
    admin = session.scalar(select(StaffUser).where(func.lower(StaffUser.email) == email.lower()))
    if admin is None or admin.role is not Role.ADMIN:
        raise click.ClickException(f"{email} は管理者のアカウントではありません。")
    now = clock.now()
    try:
        when = dt.datetime.fromisoformat(revoked_at) if revoked_at else now
    except ValueError:
        raise click.ClickException("失効日時は 2026-12-01T09:00:00+09:00 の形式で指定してください。") from None
    if when.tzinfo is None:
        raise click.ClickException("失効日時にはタイムゾーン（+09:00 など）を付けてください。")
    local = service.ensure_pki(current_app.config)
    try:
        row = lifecycle.revoke(session, local, serial_hex=serial, reason=reason, revoked_at=when,
                               actor=Actor.staff(admin), now=now, note=note)
    except lifecycle.RevocationRefused as exc:
        raise click.ClickException(exc.message) from None
    session.commit()
    lifecycle.reissue_crl(session, local, now=now)
    click.echo(f"失効させました: {row.serial_number}（{to_jst(row.revoked_at)}）。CRL を再発行しました。")
