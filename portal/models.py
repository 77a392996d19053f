"""Imports every model module so that Base.metadata knows all tables (alembic, tests)."""

import importlib
import importlib.util

from portal.audit import models as audit_models  # noqa: F401
from portal.auth import models as auth_models  # noqa: F401
from portal.counterparties import models as counterparty_models  # noqa: F401
from portal.mail import models as mail_models  # noqa: F401

for _package in (
    "portal.signing.models",
    "portal.usage_requests.models",
    "portal.contracts.models",
    "portal.signature_requests.models",
    "portal.downloads.models",
    "portal.search.models",
    "portal.preservation.models",
):
    if importlib.util.find_spec(_package.rsplit(".", 1)[0]) and importlib.util.find_spec(_package):
        importlib.import_module(_package)
