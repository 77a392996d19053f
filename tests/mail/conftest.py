from tests.contracts.fixtures import world  # noqa: F401  (fixtures)
