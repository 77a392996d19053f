"""keiyaku-portal: witness-type e-contracts for Japanese local governments."""

from __future__ import annotations

import os
import warnings
from typing import Any

from flask import Flask

# cryptography 51 warns when pyHanko imports its DSA key class (the portal never uses DSA): on stderr the warning
# would stand before the one line a command prints when it refuses to start, and in the JSON log.
warnings.filterwarnings("ignore", message="DSA is deprecated", category=UserWarning, module="pyhanko")


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the portal: settings, secrets, database, extensions, blueprints and CLI."""
    from portal import cli, contact, db, errors, formatting, health, integrity, logging_setup, security, tokens
    from portal.auth import oidc
    from portal.config import check_production, load_config
    from portal.extensions import csrf, htmx, limiter, login_manager, mail
    from portal.instance import check_initialised, ensure_instance_secrets

    tokens.mask_tokens_in_logs()
    config = dict(config or {})
    instance_path = config.pop("INSTANCE_PATH", None) or os.environ.get("PORTAL_INSTANCE_PATH") or None
    app = Flask(__name__, instance_relative_config=True, instance_path=instance_path)
    load_config(app, config)
    logging_setup.configure(app)  # first: its request hooks run before every other one
    check_production(app)
    ensure_instance_secrets(app)
    check_initialised(app)

    if app.config["PROXY_FIX_HOPS"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = int(app.config["PROXY_FIX_HOPS"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    db.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)
    mail.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    oidc.init_app(app)
    security.init_app(app)
    errors.register_error_handlers(app)
    integrity.init_app(app)
    app.register_blueprint(health.bp)
    formatting.register_filters(app)
    contact.init_app(app)
    _register_blueprints(app)
    cli.register(app)

    @app.context_processor
    def inject_settings() -> dict[str, Any]:
        return {
            "agency_name": app.config["AGENCY_NAME"],
            "service_name": app.config["SERVICE_NAME"],
        }

    from portal.jobs import worker
    from portal.mail import worker as mail_worker

    mail_worker.init_app(app)
    worker.init_app(app)  # last: every feature has registered its jobs and tasks
    return app


def _register_blueprints(app: Flask) -> None:
    from portal import (
        access,
        admin,
        api,
        audit,
        auth,
        backup,
        contracts,
        downloads,
        home,
        mail,
        preservation,
        registry,
        search,
        signature_requests,
        signing,
        usage_requests,
        webhooks,
    )

    access.init_app(app)
    for module in (home, auth, mail):
        app.register_blueprint(module.bp)
    admin.init_app(app)
    # Feature packages register their blueprints, CLI commands and periodic jobs themselves.
    for feature in (signing, usage_requests, contracts, registry, signature_requests, downloads, search,
                    preservation, api, webhooks, audit, backup):
        feature.init_app(app)
