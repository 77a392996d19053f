from tests.contracts.fixtures import app_config, world  # noqa: F401  (fixtures)
