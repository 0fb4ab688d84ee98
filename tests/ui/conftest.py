"""The browser fixtures (``browser``, ``page``, ``screenshot_dir``) live in ``tests/browser.py``
and are registered once by ``tests/conftest.py``: one Playwright session for every browser test."""
