"""Domain fixtures (tests/factories.py) and the real Chromium of the UI tests."""

from tests.factories import api_client, world  # noqa: F401
from tests.ui.conftest import browser, page  # noqa: F401
