"""A real headless Chromium (Debian's package) driven by Playwright, against live_server.

The fixtures are registered once, by ``tests/conftest.py``, for every browser test
(``tests/ui``, ``tests/ui_pages``, ``tests/security``): one session-wide Playwright
instance, since a second ``sync_playwright()`` in the same process fails.
"""

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        raise RuntimeError("UI tests need Debian's chromium at /usr/bin/chromium: run `make browser`")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # around it are ordinary synchronous ones.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshot_dir():
    path = Path(os.environ.get("CELLCURATE_SCREENSHOTS", "/tmp/cellcurate-screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path
