"""The secrets and the built-in PKI an installation runs on, and who may create them.

On SQLite (one machine) they are generated into instance/ at the first start. On PostgreSQL several
servers share one database, so they must share these too: a server start or a request never generates
them there. `flask init` creates them once, into the instance folder (a volume every server mounts)
and PKI_DIR, or the operator gives them by setting or file (PORTAL_SECRET_KEY_FILE, PORTAL_PKI_DIR…).
"""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

SECRET_FILES = {"SECRET_KEY": "secret_key", "MASTER_KEY": "master_key"}


def shares_database(config: Mapping[str, Any]) -> bool:
    """True when several servers may use this database (PostgreSQL): nothing shared is generated on start."""
    return str(config.get("DATABASE_URL") or "").startswith("postgresql")


def missing(config: Mapping[str, Any], instance: Path) -> list[str]:
    """What a PostgreSQL installation lacks before it may serve, one Japanese line each."""
    from portal.signing.service import pki_exists

    lines = []
    for key, filename in SECRET_FILES.items():
        if not config.get(key) and not (instance / filename).exists():
            lines.append(f"PORTAL_{key}（または PORTAL_{key}_FILE）が設定されていません。"
                         "PostgreSQL では複数のサーバーが同じ値を使うため、その場で生成しません。"
                         "全サーバーに同じ値を設定するか、全サーバーが使う instance/ で"
                         "一度だけ flask --app portal:create_app init を実行してください。")
    if not pki_exists(config):
        lines.append(f"内蔵 PKI（{config.get('PKI_DIR')}）がありません。"
                     "PostgreSQL では複数のサーバーが同じ認証局と鍵を使うため、その場で生成しません。"
                     "一度だけ flask --app portal:create_app init を実行し、"
                     "全サーバーで同じ PORTAL_PKI_DIR を使ってください。")
    return lines


def read_secrets(config: dict[str, Any], instance: Path, *, generate: bool) -> list[str]:
    """Fill SECRET_KEY and MASTER_KEY from instance/ (mode 0600), generating a missing one when `generate`.
    A secret given by configuration wins. Returns the files created."""
    created = []
    instance.mkdir(parents=True, exist_ok=True)
    for key, filename in SECRET_FILES.items():
        if config.get(key):
            continue
        path = instance / filename
        if not path.exists():
            if not generate:
                continue
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another `flask init` on the same volume was first
                pass
            else:
                with os.fdopen(fd, "w") as handle:
                    handle.write(secrets.token_hex(32))
                    handle.flush()
                    os.fsync(handle.fileno())
                created.append(str(path))
        config[key] = path.read_text().strip()
    return created


def initialise(config: dict[str, Any], instance: Path) -> list[str]:
    """Create what is missing of the secrets and the built-in PKI (what `flask init` does); returns what
    was created. Two runs at once on one volume create one set: the PKI under a lock, secrets exclusively."""
    from portal.signing.service import ensure_pki, pki_exists

    created = read_secrets(config, instance, generate=True)
    directory = Path(str(config["PKI_DIR"]))
    if not pki_exists(config):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with (directory / ".init-lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not pki_exists(config):
                ensure_pki(config, create=True)
                created.append(str(directory))
    return created


def initialised(config: dict[str, Any]) -> dict[str, Any]:
    """`config` (with INSTANCE_PATH) after creating its secrets and PKI as `flask init` would: for scripts
    that build an app on PostgreSQL themselves (bench/)."""
    instance = Path(str(config["INSTANCE_PATH"]))
    config.setdefault("PKI_DIR", str(instance / "pki"))
    initialise(config, instance)
    return config


def ensure_instance_secrets(app: Flask) -> None:
    """Create instance/ and read the secrets there (mode 0600), generating missing ones on SQLite only.

    A secret already given by configuration (PORTAL_SECRET_KEY, the test mapping) wins. On PostgreSQL a
    missing one stays missing: `flask init` creates it (portal/instance.py), or the operator sets it.
    """
    read_secrets(app.config, Path(app.instance_path), generate=not shares_database(app.config))


def check_initialised(app: Flask) -> None:
    """On PostgreSQL, refuse to start without the shared secrets and PKI (one line, exit status 1); only
    `flask init` and `flask db` may run before them."""
    if not shares_database(app.config) or _cli_command() in ("init", "db"):
        return
    problems = missing(app.config, Path(app.instance_path))
    if problems:
        raise SystemExit(f"keiyaku-portal: 起動を中止しました: {problems[0]}")


def _cli_command() -> str | None:
    """The `flask` subcommand the app is being created for, or None outside the Flask CLI (gunicorn).

    Flask creates the app while it resolves the command's name, before click records it, so the name is
    read from the command line: the first word after the options of `flask` itself.
    """
    import sys

    import click

    if click.get_current_context(silent=True) is None:
        return None
    words = iter(sys.argv[1:])
    for word in words:
        if word in ("--app", "-A", "--env-file", "-e"):
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None
