from tests.contracts.fixtures import app_config, pki_dir, world  # noqa: F401  (fixtures)
