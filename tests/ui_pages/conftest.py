"""Helpers of the QA / ML / manager page tests; the browser fixtures come from tests/conftest.py."""

from dataclasses import dataclass, field

import pytest

from tests.factories import PASSWORD


@dataclass
class Seen:
    dialogs: list = field(default_factory=list)
    csp: list = field(default_factory=list)
    errors: list = field(default_factory=list)


@pytest.fixture
def seen(page):
    """Dialogs (an XSS would open one), CSP violations and uncaught JS errors of the page."""
    s = Seen()

    def on_dialog(dialog):
        s.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: s.csp.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda exc: s.errors.append(str(exc)))
    return s


def log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")
