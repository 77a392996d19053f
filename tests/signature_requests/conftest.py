from tests.contracts.fixtures import app_config, tsa_down, world  # noqa: F401  (fixtures)
