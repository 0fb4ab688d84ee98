"""Domain fixtures (tests/factories.py); the browser fixtures come from tests/conftest.py."""

from tests.factories import api_client, world  # noqa: F401
