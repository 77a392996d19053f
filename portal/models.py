"""Imports every model module so that Base.metadata knows all tables (alembic, tests)."""

from portal.access import models as access_models  # noqa: F401
from portal.api import models as api_models  # noqa: F401
from portal.audit import models as audit_models  # noqa: F401
from portal.auth import models as auth_models  # noqa: F401
from portal.backup import models as backup_models  # noqa: F401
from portal.contracts import models as contract_models  # noqa: F401
from portal.counterparties import models as counterparty_models  # noqa: F401
from portal.jobs import models as job_models  # noqa: F401
from portal.mail import models as mail_models  # noqa: F401
from portal.preservation import models as preservation_models  # noqa: F401
from portal.search import models as search_models  # noqa: F401
from portal.signing import models as signing_models  # noqa: F401
from portal.usage_requests import models as usage_request_models  # noqa: F401
from portal.webhooks import models as webhook_models  # noqa: F401
