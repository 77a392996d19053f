"""Backup and restore time and size, printed (never asserted).

    .venv/bin/python bench/backup.py                   # 10 contracts (make bench)
    .venv/bin/python bench/backup.py --contracts 1000  # the figure for the closing note
    .venv/bin/python bench/backup.py --contracts 1000 --database postgresql+psycopg://postgres@127.0.0.1:5432/postgres

N completed contracts with 3 documents each (B-LTA PDFs of 1, 3 and 8 pages signed by the built-in
PKI and TSA, each stored encrypted on its own, with a 合意締結証明書-sized fourth file and a JPEG
page image per page, as the worker stores them) and their audit events. Then, as an operator would:
`backup create` (snapshot + encryption), the read-back verification, `backup restore` into an empty
instance and database, and the checks after it (every file decrypted, every signature verified by
the portal and pdfsig, counts, searches). With --database, a PostgreSQL database of that server is
created for the data and another for the restore, both dropped at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from portal import clock, create_app, migrate
from portal.audit.service import SYSTEM, record
from portal.backup import checks, service
from portal.contracts.documents import certificate_owner, page_image_owner
from portal.contracts.models import PageImage
from portal.contracts.pages import page_image
from portal.db import make_engine
from portal.signing import service as signing
from portal.signing.pades import Approval, finalize, sign_approval
from portal.storage import get_store
from tests.factories import make_department, make_staff
from tests.pdfs import make_pdf
from tests.search.factories import make_contract


def _databases(base: str | None, tmp: str) -> tuple[str, str, list[str]]:
    if not base:
        return f"sqlite:///{tmp}/source.sqlite3", f"sqlite:///{tmp}/restored/portal.sqlite3", []
    url = make_url(base)
    names = [f"keiyaku_bench_{uuid.uuid4().hex[:8]}", f"keiyaku_bench_{uuid.uuid4().hex[:8]}"]
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for name in names:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return (url.set(database=names[0]).render_as_string(hide_password=False),
            url.set(database=names[1]).render_as_string(hide_password=False), names)


def _drop(base: str, names: list[str]) -> None:
    admin = create_engine(make_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for name in names:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _populate(app, contracts: int) -> None:
    session = app.extensions["portal.session_factory"]()
    session.info["app"] = app
    department = make_department(session)
    staff = make_staff(session, department=department)
    with app.app_context():
        context = signing.configure(app.config)
        approval = Approval("山田 太郎", "yamada@vendor.example.co.jp", dt.datetime(2026, 4, 1, tzinfo=dt.UTC))
        variants = [finalize(sign_approval(make_pdf(f"Document {pages}", pages), approval, context=context),
                             context=context) for pages in (1, 3, 8)]
        images = [[page_image(data, f"variant{i}", page, width=1000) for page in range(pages)]
                  for i, (data, pages) in enumerate(zip(variants, (1, 3, 8), strict=True))]
        store = get_store()
        for n in range(contracts):
            contract = make_contract(
                session, number=f"B-{n:06d}", department=department, created_by=staff,
                transaction_date=dt.date(2026, 4, 1) + dt.timedelta(days=n % 300), amount=1_100_000 + n,
                tax_amount=100_000, counterparty_name=f"株式会社ベンチ{n % 97}", business_name=f"業務委託 {n}",
                documents={f"B-{n:06d}-{i}.pdf": data for i, data in enumerate(variants)})
            certificate = store.put(variants[0], owner=certificate_owner(contract.id))
            contract.certificate_key, contract.certificate_sha256 = certificate.key, certificate.sha256
            for document_images in images:
                marker = secrets.token_hex(32)  # each document has its own revision, so its own images
                for page, jpeg in enumerate(document_images):
                    stored = store.put(jpeg, owner=page_image_owner(marker, page, 1000))
                    session.add(PageImage(sha256=marker, page_index=page, width=1000, storage_key=stored.key,
                                          size=stored.size, created_at=clock.now()))
            for action in ("staff:contract:created", "staff:contract:sent", "signer:contract:signed",
                           "signer:contract:signed", "system:contract:completed"):
                record(session, actor=SYSTEM, action=action, subject=contract)
            session.commit()
    session.close()


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, default=10)
    parser.add_argument("--database", default="", help="a PostgreSQL server URL (default: SQLite)")
    parser.add_argument("--signature-sample", type=int, default=None,
                        help="verify the signatures of only this many files and extrapolate (default: all)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source_url, restore_url, created = _databases(args.database, tmp)
        try:
            _run(args.contracts, source_url, restore_url, Path(tmp), args.signature_sample)
        finally:
            if created:
                _drop(args.database, created)


def _run(contracts: int, source_url: str, restore_url: str, tmp: Path, sample: int | None) -> None:
    engine = make_engine(source_url)
    with engine.begin() as connection:
        migrate.upgrade(connection)
    engine.dispose()
    signing.ensure_pki({"PKI_DIR": str(tmp / "instance" / "pki")})  # as `flask init` does (PostgreSQL needs it)
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp / "instance"), "DATABASE_URL": source_url,
                      "OUTBOX_WORKER": False, "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 64,
                      "SECRET_KEY": secrets.token_hex(32), "MASTER_KEY": secrets.token_hex(32)})
    start = time.perf_counter()
    _populate(app, contracts)
    print(f"{contracts} completed contracts × 3 documents prepared in {time.perf_counter() - start:.0f} s "
          f"({make_url(source_url).get_backend_name()})")
    secret = os.urandom(24).hex().encode()
    sources = service.BackupSources.from_config(app.config, app.instance_path)
    database_size = (Path(make_url(source_url).database or "").stat().st_size
                     if source_url.startswith("sqlite") else 0)
    source_size = database_size + _tree_size(Path(app.config["STORAGE_DIR"])) + _tree_size(sources.pki_dir)

    start = time.perf_counter()
    info = service.create_backup(sources, into=tmp / "backups", secret=secret, now=clock.now())
    created = time.perf_counter() - start
    start = time.perf_counter()
    _, problems = service.verify_backup(info.path, secret)
    verified = time.perf_counter() - start
    assert not problems, problems
    counts = info.manifest["counts"]

    target = tmp / "restored"
    start = time.perf_counter()
    manifest = service.restore_backup(info.path, secret, service.RestoreTarget(target, restore_url), force=False)
    restored = time.perf_counter() - start
    restored_app = checks.restored_app(target, restore_url, {key: (target / name).read_text()
                                                             for key, name in service.SECRET_NAMES.items()})
    start = time.perf_counter()
    report = checks.check_restored(restored_app, manifest, signatures=False)
    checked = time.perf_counter() - start
    start = time.perf_counter()
    with restored_app.app_context(), restored_app.extensions["portal.session_factory"]() as session:
        checks.check_signatures(session, report, limit=sample)
        signed_total = sum(1 for _ in checks.signed_files(session))
    signed = time.perf_counter() - start
    restored_app.extensions["portal.engine"].dispose()
    app.extensions["portal.engine"].dispose()

    mib = 1024 * 1024
    print(f"  data: {counts['documents']} documents, {counts['page_images']} page images, "
          f"{counts['audit_events']} audit events; {source_size / mib:.1f} MiB on disk"
          + ("" if database_size else " (+ the PostgreSQL database)"))
    print(f"  backup create: {created:.1f} s, {info.size_bytes / mib:.1f} MiB "
          f"(database part {info.manifest['parts']['database']['stored_size'] / mib:.1f} MiB)")
    print(f"  backup verify (read back, decrypt, SHA-256): {verified:.1f} s")
    print(f"  restore (decrypt, check, put in place): {restored:.1f} s")
    print(f"  checks after restore: counts, {report.files_checked} files decrypted and "
          f"{report.searches_checked} searches in {checked:.1f} s; {report.signatures_verified} signatures in "
          f"{report.documents_verified} files verified{' (and pdfsig)' if report.pdfsig_used else ''} "
          f"in {signed:.1f} s "
          f"({report.documents_verified / signed:.1f} files/s); {len(report.problems)} problems")
    all_signed = signed / report.documents_verified * signed_total if report.documents_verified else 0.0
    if report.documents_verified < signed_total:
        print(f"  (signatures of {report.documents_verified} of {signed_total} signed files verified; "
              f"all of them at that rate: {all_signed:.0f} s)")
    print(f"  total restore with every check: {restored + checked + all_signed:.0f} s")


if __name__ == "__main__":
    main()
