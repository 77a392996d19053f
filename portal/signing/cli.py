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
