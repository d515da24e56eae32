"""Fixtures: the servers `.ci/python-client` started for these tests (loopback only)."""

import pytest

from support import Server, load_server


@pytest.fixture(scope="session")
def server() -> Server:
    return load_server("EAP_PYTEST_BASE_URL", "EAP_PYTEST_ADMIN")


@pytest.fixture(scope="session")
def tight_server() -> Server:
    """A second instance whose provider budget is 60 requests a minute."""
    return load_server("EAP_PYTEST_TIGHT_BASE_URL", "EAP_PYTEST_TIGHT_ADMIN")
