"""Domain fixtures (defined in tests/factories.py)."""

from tests.factories import api_client, world  # noqa: F401
