"""HTTP endpoints of portal.signing."""
