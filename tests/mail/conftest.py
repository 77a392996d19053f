from tests.contracts.fixtures import pki_dir, world  # noqa: F401  (fixtures)
