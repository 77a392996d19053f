from __future__ import annotations

from flask import current_app
from flask.typing import ResponseReturnValue

from portal import clock
from portal.auth.models import Role
from portal.backup import bp, runs
from portal.db import db
from portal.htmx import render_page_or_partial
from portal.security import role_required


@bp.get("")
@role_required(Role.ADMIN)
def index() -> ResponseReturnValue:
    now = clock.now()
    overview = runs.overview(db(), current_app.config, now=now)
    return render_page_or_partial("backup/index.html", "backup/_status.html", overview=overview, now=now,
                                  backup_dir=current_app.config["BACKUP_DIR"],
                                  keep=runs.settings_keep(current_app.config))
