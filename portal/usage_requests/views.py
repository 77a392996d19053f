"""HTTP layer of usage requests (routes are added as the feature lands)."""

from portal.usage_requests import bp  # noqa: F401
