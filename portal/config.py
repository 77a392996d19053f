"""Settings: defaults in code → instance/config.py → PORTAL_* environment → the test mapping.

Every key is documented in docs/settings.md. Secrets are never defaults: on SQLite they are generated into
instance/ at first start (mode 0600) by portal.instance.ensure_instance_secrets(); on PostgreSQL by `flask init` only.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask

DEFAULTS: dict[str, Any] = {
    # Identity shown in mails, pages and certificates.
    "AGENCY_NAME": "岡山県",
    "SERVICE_NAME": "けいやくポータル",
    "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
    "CONTACT_PHONE": "",
    "CONTACT_HOURS": "平日 8:30-17:15",
    "CONTACT_EMAIL": "",
    "CONTACT_FORM_URL": "",
    # Database: empty means SQLite in instance/portal.sqlite3.
    "DATABASE_URL": "",
    # Mail: empty MAIL_SERVER keeps mails in the outbox, shown (links masked) on the 送信メール page.
    "MAIL_SERVER": "",
    "MAIL_PORT": 25,
    "MAIL_USE_TLS": False,
    "MAIL_USE_SSL": False,
    "MAIL_USERNAME": None,
    "MAIL_PASSWORD": None,
    "MAIL_DEFAULT_SENDER": "",
    "MAIL_FROM_ADDRESS": "noreply@example.jp",
    "MAIL_TIMEOUT": 10,
    "MAIL_MAX_ATTEMPTS": 8,
    "MAIL_RETRY_BASE_SECONDS": 30,
    "OUTBOX_WORKER": True,
    "OUTBOX_POLL_SECONDS": 15,
    "WORKER_PROCESS": True,
    "WORKER_NICE": 10,
    "WORKER_IN_WEB": True,
    "DEADLINES_INTERVAL_SECONDS": 3600,
    # 契約番号 per department and 年度 (see portal/contracts/numbering.py): DORO-R8-0001.
    "CONTRACT_NUMBER_FORMAT": "{department}-{era}{era_year}-{serial:04d}",
    # Background jobs: a running job's worker writes a heartbeat; one silent for JOB_STALE_SECONDS
    # is taken over by another worker.
    "JOB_HEARTBEAT_SECONDS": 20,
    "JOB_STALE_SECONDS": 120,
    # 一括検証: processes validating documents in parallel (0: one per CPU).
    "VERIFY_PROCESSES": 0,
    # Staff login hardening.
    "LOGIN_MAX_FAILURES": 5,
    "LOGIN_LOCK_MINUTES": 15,
    "SETUP_TOKEN_HOURS": 24,
    "ENROLMENT_TOKEN_HOURS": 72,
    # Single sign-on with the agency's OpenID Connect provider (empty OIDC_ISSUER: off).
    "OIDC_ISSUER": "",
    "OIDC_CLIENT_ID": "",
    "OIDC_CLIENT_SECRET": "",
    "OIDC_SCOPES": "openid email profile",
    "OIDC_MFA_AMR": "mfa otp hwk swk fpt face sc",  # amr values that count as a second factor at the provider
    "OIDC_MFA_ACR": "",  # acr values that count as a second factor
    "OIDC_CREATE_USERS": False,
    "OIDC_DEFAULT_DEPARTMENT": "",
    "OIDC_TIMEOUT_SECONDS": 10,
    "PASSWORD_LOGIN": True,  # False: only BREAK_GLASS_ADMINS may log in with a password
    "BREAK_GLASS_ADMINS": "",
    # Documents.
    "STORAGE_BACKEND": "local",  # "local": encrypted files in STORAGE_DIR; "s3": an S3-compatible bucket
    "STORAGE_S3_ENDPOINT_URL": "",  # https://minio.example.internal:9000; empty: AWS's own endpoint
    "STORAGE_S3_BUCKET": "",
    "STORAGE_S3_REGION": "",
    "STORAGE_S3_PREFIX": "",  # key prefix inside the bucket (several installations in one bucket)
    "STORAGE_S3_ACCESS_KEY_ID": "",
    "STORAGE_S3_SECRET_ACCESS_KEY": "",
    "STORAGE_S3_ADDRESSING_STYLE": "path",  # "path" (MinIO, Ceph RGW) or "virtual"
    "STORAGE_S3_TIMEOUT_SECONDS": 10,
    "STORAGE_S3_OBJECT_LOCK_DAYS": 0,  # > 0: every object kept this long in compliance mode (Object Lock)
    "PDF_MAX_BYTES": 50 * 1024 * 1024,
    "PDF_MAX_PAGES": 500,  # per uploaded PDF: every page is an image on the signing page
    "PDF_MAX_INFLATED_BYTES": 512 * 1024 * 1024,  # all Flate streams of one PDF, decompressed
    "PDF_ALLOW_EMBEDDED_PDFS": False,  # True: a PDF may carry attachments that are themselves PDFs
    "PDF_FONT_FILE": "",
    # Visible signature stamps (R18): off, every signature is invisible. On: a small box in the page margin
    # (text: contracts/signature_stamp.txt), at this corner of the last page per kind of document.
    "SIGNATURE_STAMP": False,
    "SIGNATURE_STAMP_CORNERS": {"contract": "bottom-right", "certificate": "bottom-left"},
    "MAX_CONTENT_LENGTH": 110 * 1024 * 1024,
    # Signing (see docs/signing.md).
    "SIGNING_BACKEND": "local",
    "SIGNING_PKCS12_PATH": "",
    "SIGNING_PKCS12_PASSPHRASE": "",
    "SIGNING_PKCS11_MODULE": "",
    "SIGNING_PKCS11_TOKEN_LABEL": "",
    "SIGNING_PKCS11_KEY_LABEL": "",
    "SIGNING_PKCS11_PIN": "",
    "SIGNING_PKCS11_CERT_PATH": "",
    "SIGNING_CHAIN_PATH": "",
    "SIGNING_TRUST_ROOTS": [],
    "SIGNING_CERT_YEARS": 2,
    # The signing certificate chains to a root on Adobe's Approved Trust List (the portal cannot read
    # that list): the vendor help page then says Acrobat shows 「署名は有効です」 with no set-up.
    "SIGNING_CERT_AATL": False,
    "TSA_URL": "",
    "TSA_TIMEOUT": 10,
    "TSA_USERNAME": "",
    "TSA_PASSWORD": "",
    "TSA_ACCREDITED_URLS": [],
    "TSA_CERT_CHAIN_PATH": "",  # PEM: the external TSA's certificate, then its issuers
    "TSA_POLICY_OID": "",  # asked for in every request to the external TSA, and checked in its answer
    "TSA_ACCREDITED_CERTS": [],  # PEM files of accredited TSA certificates (or their issuing CAs)
    # The built-in PKI renews the signing certificate this many days before it expires (the TSA
    # certificate TIMESTAMP_RENEW_DAYS earlier still); the check runs every PKI_CHECK_SECONDS.
    "PKI_RENEW_DAYS": 120,
    "PKI_CHECK_SECONDS": 3600,
    # Archive timestamps: a completed document gets a new document timestamp when its newest one's
    # TSA certificate expires within this many days, or uses a digest in TIMESTAMP_WEAK_DIGESTS.
    "TIMESTAMP_RENEW_DAYS": 365,
    "TIMESTAMP_WEAK_DIGESTS": ["md5", "sha1"],
    "TIMESTAMP_CHECK_SECONDS": 24 * 3600,
    # Free-mail domains refused for signers (R11); subdomains match, "gmx.*" means any gmx.<tld>.
    "FREE_MAIL_DOMAINS": [
        "gmail.com", "googlemail.com", "yahoo.co.jp", "ymail.ne.jp", "yahoo.com", "outlook.jp",
        "outlook.com", "hotmail.com", "hotmail.co.jp", "live.jp", "live.com", "msn.com", "icloud.com",
        "me.com", "mac.com", "aol.com", "gmx.*", "proton.me", "protonmail.com", "zoho.com", "mail.com",
        "docomo.ne.jp", "ezweb.ne.jp", "au.com", "softbank.ne.jp", "i.softbank.jp", "ymobile.ne.jp",
        "rakuten.jp",
    ],
    # The agency's own mail domains: a counterparty signer there (or with a staff account's address)
    # is refused unless an administrator gives a reason; subdomains match, as for FREE_MAIL_DOMAINS.
    "AGENCY_MAIL_DOMAINS": [],
    # E-mail addresses: also ask DNS whether the domain receives mail (needs network access).
    "EMAIL_CHECK_DNS": False,
    # Usage requests (電子契約利用申出書): confirmation link lifetime and the public form's limit per IP.
    "USAGE_REQUEST_CONFIRM_HOURS": 72,
    "USAGE_REQUEST_RATE_LIMIT": "5 per hour;20 per day",
    # 宛名 on the form's PDF; empty: the head of AGENCY_NAME (岡山県 → 岡山県知事, 津山市 → 津山市長).
    "USAGE_REQUEST_ADDRESSEE": "",
    # Contracts: eligibility, deadlines and links.
    "MAX_TERM_YEARS": 10,  # longer terms are not e-contracted (R12)
    # 契約の種類 offered on every contract; retention policies and the rules below refer to these names.
    "CONTRACT_TYPES": ["委託", "物品", "工事", "賃貸借", "その他"],
    # Types that need the counterparty's recorded prior 承諾 before sending (建設業法 19条3項, R9).
    "CONSENT_REQUIRED_CONTRACT_TYPES": ["工事"],
    # More than 0: refuse a contract whose term plus its type's retention exceeds this many years (R12).
    "MAX_TERM_PLUS_RETENTION_YEARS": 0,
    "REMINDER_DAYS_BEFORE": [3, 1],  # reminders to the current signer before 締結予定日 (R15)
    "DOWNLOAD_LINK_DAYS": 14,  # completion mail download links (R17)
    # Completion (B-LTA, certificate, 締結済み) runs in the worker; false: in the last signer's request.
    "COMPLETION_BACKGROUND": True,
    "COMPLETION_RETRY_BASE_SECONDS": 60,  # first retry after a TSA/OCSP failure; doubles, at most an hour
    "COMPLETION_MAX_ATTEMPTS": 60,  # about two and a half days of retries before staff are told
    "ACCESS_CODE_MAX_ATTEMPTS": 5,  # wrong アクセスコード entries before the link locks
    "PAGE_IMAGE_WIDTH": 1000,  # px of the page images on the signing page
    "PAGE_IMAGE_MAX_PIXELS": 6_000_000,  # a taller page is drawn narrower rather than bigger
    "PAGE_RENDER_MEMORY_BYTES": 1024 * 1024 * 1024,  # address-space limit of the rendering process
    "PAGE_RENDER_TIMEOUT_SECONDS": 120,  # one rendering process, all pages of a document
    # Search and preservation (電子帳簿保存法).
    "SEARCH_COUNT_LIMIT": 1000,  # the search screen counts up to this many matches, then shows 「1,000 件以上」
    "SEARCH_PAGE_SIZE": 50,  # results per page on the search screen and GET /api/v1/search
    "SEARCH_MAX_PAGE_SIZE": 500,  # largest per_page a caller may ask for
    # JSON API and webhooks (docs/webhooks.md).
    "API_TOKEN_DAYS": 365,  # default lifetime of a new API token
    "API_IDEMPOTENCY_KEY_HOURS": 24,  # how long a POST's Idempotency-Key replays its first answer
    "WEBHOOK_TIMEOUT_SECONDS": 10,  # one delivery attempt's connect + answer time
    "WEBHOOK_RETRY_BASE_SECONDS": 30,  # first retry delay; doubles each attempt
    "WEBHOOK_RETRY_MAX_SECONDS": 3600,  # longest delay between two attempts
    "WEBHOOK_GIVE_UP_HOURS": 72,  # after this long since the event, a delivery is marked failed
    "RETENTION_YEARS_DEFAULT": 10,  # when no RetentionPolicy matches (R26)
    "RETENTION_YEARS_MINIMUM": 7,  # 法人税法: 7 years; policies below this are refused
    "VERIFICATION_BACKGROUND": True,  # False: 一括検証 runs inside the request (tests, small sites)
    "AUDIT_CHECKPOINT_SECONDS": 24 * 3600,  # how often the operation log's head is verified and timestamped
    # Backups (docs/deploy.md): where, when (daily, in TIMEZONE), which generations to keep.
    "BACKUP_DIR": "",  # empty: instance/backups (better: another disk, mounted from elsewhere)
    "BACKUP_PASSPHRASE": "",  # the backup key; give it as PORTAL_BACKUP_PASSPHRASE_FILE, never beside the backups
    "BACKUP_TIME": "02:30",  # the worker's daily backup (HH:MM in TIMEZONE); empty: no automatic backup
    "BACKUP_KEEP_DAILY": 7,
    "BACKUP_KEEP_MONTHLY": 12,
    "BACKUP_KEEP_YEARLY": 10,
    "BACKUP_PG_DUMP": "pg_dump",  # PostgreSQL client programs, version 15 or newer (as the server)
    "BACKUP_PG_RESTORE": "pg_restore",
    # Behind a reverse proxy: how many proxies set X-Forwarded-For/Proto (0 = not behind one).
    "PROXY_FIX_HOPS": 0,
    "STAFF_ALLOWED_NETWORKS": "",
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,  # Redis unreachable: count per process meanwhile, never fail
    "RATELIMIT_ENABLED": True,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": None,  # None: Secure exactly when PUBLIC_BASE_URL is https
    "PERMANENT_SESSION_LIFETIME": 8 * 3600,
    "WTF_CSRF_TIME_LIMIT": None,
    "TIMEZONE": "Asia/Tokyo",
    # Serving, health and logs. gunicorn (portal/gunicorn_conf.py) reads the first five from PORTAL_* variables.
    "BIND": "127.0.0.1:5000",
    "WEB_PROCESSES": 2,
    "WEB_THREADS": 8,
    "FORWARDED_ALLOW_IPS": "127.0.0.1,::1",  # proxies whose X-Forwarded-Proto gunicorn believes
    "ACCESS_LOG": "",  # gunicorn's own access line: empty off (the portal logs each request), "-" stdout, or a file
    "LOG_LEVEL": "INFO",  # of the portal's loggers; libraries log warnings and errors
    "READY_TSA_CHECK_SECONDS": 60,  # /readyz asks the TSA for a timestamp at most this often per process
}

# Settings that may instead be read from a file named by PORTAL_<NAME>_FILE (container secrets).
FILE_SETTINGS = ("SECRET_KEY", "MASTER_KEY", "DATABASE_URL", "MAIL_PASSWORD", "OIDC_CLIENT_SECRET",
                 "SIGNING_PKCS11_PIN", "TSA_PASSWORD", "STORAGE_S3_ACCESS_KEY_ID", "STORAGE_S3_SECRET_ACCESS_KEY",
                 "RATELIMIT_STORAGE_URI", "BACKUP_PASSPHRASE")


def load_config(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Fill app.config in the documented order and resolve instance-relative paths."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("PORTAL")
    if test_config:
        app.config.from_mapping(test_config)
    _read_setting_files(app.config)
    instance = Path(app.instance_path)
    app.config.setdefault("STORAGE_DIR", str(instance / "files"))
    app.config.setdefault("PKI_DIR", str(instance / "pki"))
    if not app.config["BACKUP_DIR"]:
        app.config["BACKUP_DIR"] = str(instance / "backups")
    if not app.config["DATABASE_URL"]:
        app.config["DATABASE_URL"] = f"sqlite:///{instance / 'portal.sqlite3'}"
    if app.config["SESSION_COOKIE_SECURE"] is None:
        app.config["SESSION_COOKIE_SECURE"] = str(app.config["PUBLIC_BASE_URL"]).startswith("https://")
    if not app.config["MAIL_DEFAULT_SENDER"]:
        app.config["MAIL_DEFAULT_SENDER"] = (app.config["SERVICE_NAME"], app.config["MAIL_FROM_ADDRESS"])
    _check_stamp_corners(app.config["SIGNATURE_STAMP_CORNERS"])


STAMP_CORNERS = ("bottom-right", "bottom-left", "top-right", "top-left")


def _check_stamp_corners(corners: Any) -> None:
    if not isinstance(corners, dict) or any(value not in STAMP_CORNERS for value in corners.values()):
        raise SystemExit("keiyaku-portal: 起動を中止しました: PORTAL_SIGNATURE_STAMP_CORNERS は文書の種類ごとの隅"
                         f"（{' / '.join(STAMP_CORNERS)}）です（例: {{\"contract\": \"bottom-right\"}}）。")


def _read_setting_files(config: dict[str, Any]) -> None:
    """PORTAL_SECRET_KEY_FILE=/run/secrets/portal_key: the file's content (one trailing newline dropped) is
    the setting. A file that cannot be read stops the start with one line naming it."""
    for key in FILE_SETTINGS:
        path = config.get(f"{key}_FILE")
        if not path:
            continue
        try:
            value = Path(str(path)).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SystemExit(f"keiyaku-portal: 起動を中止しました: PORTAL_{key}_FILE（{path}）を読めません"
                             f"（{exc.__class__.__name__}）。") from None
        value = value.removesuffix("\n").removesuffix("\r")
        if not value:
            raise SystemExit(f"keiyaku-portal: 起動を中止しました: PORTAL_{key}_FILE（{path}）が空です。")
        config[key] = value


# Names that can never be a real installation (RFC 2606, RFC 6761): a laptop or a test, not production.
RESERVED_SUFFIXES = (".test", ".example", ".invalid", ".localhost")


def _is_loopback_host(host: str | None) -> bool:
    if not host or host == "localhost" or host.endswith(RESERVED_SUFFIXES):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def production_problems(config: dict[str, Any]) -> list[str]:
    """Unsafe defaults in a production installation, one line each naming the setting.

    An installation counts as production when its PUBLIC_BASE_URL is not on loopback (or a reserved test
    name) or its database is a PostgreSQL server on another host: a laptop or the test suite is not checked.
    """
    base = urlsplit(str(config.get("PUBLIC_BASE_URL") or ""))
    database = urlsplit(str(config.get("DATABASE_URL") or ""))
    remote_database = database.scheme.startswith("postgresql") and not _is_loopback_host(database.hostname)
    if _is_loopback_host(base.hostname) and not remote_database:
        return []
    problems = []
    if _is_loopback_host(base.hostname):
        problems.append("PORTAL_PUBLIC_BASE_URL が未設定（ループバック）です。メールのリンクに使う公開 URL "
                        "（例: https://keiyaku.pref.example.jp）を設定してください。")
    elif base.scheme != "https":
        problems.append("PORTAL_PUBLIC_BASE_URL が https ではありません。"
                        "通信を暗号化するため https:// の URL を設定してください。")
    if base.scheme == "https" and not config.get("SESSION_COOKIE_SECURE"):
        problems.append("PORTAL_SESSION_COOKIE_SECURE が false です。https で運用するときは true にしてください。")
    return problems


def check_production(app: Flask) -> None:
    """Refuse to start on unsafe defaults in production, with a one-line message (exit status 1)."""
    problems = production_problems({**app.config, "INSTANCE_PATH": app.instance_path})
    if problems:
        raise SystemExit(f"keiyaku-portal: 起動を中止しました: {problems[0]}")
