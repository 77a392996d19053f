from tests.contracts.fixtures import app_config, pki_dir, tsa_down, world  # noqa: F401  (fixtures)
