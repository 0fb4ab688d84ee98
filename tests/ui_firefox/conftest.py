"""Firefox for the workspace tests: Debian's ``firefox-esr``, driven over Marionette.

Playwright drives Firefox only through its own patched build, which cannot be installed
here (no downloads but package registries); Marionette is Firefox's own remote protocol,
built into every release, and ``marionette_driver`` is its client on PyPI.
"""

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def firefox():
    from marionette_driver.marionette import Marionette

    binary = shutil.which("firefox-esr") or shutil.which("firefox")
    if binary is None:
        pytest.fail("The Firefox tests need Debian's firefox-esr: `make browser` installs it.")
    port = _free_port()
    profile = Path(tempfile.mkdtemp(prefix="cellcurate-firefox-"))
    (profile / "user.js").write_text(
        f'user_pref("marionette.port", {port});\n'
        'user_pref("browser.shell.checkDefaultBrowser", false);\n'
        'user_pref("datareporting.policy.dataSubmissionEnabled", false);\n'
        'user_pref("browser.aboutwelcome.enabled", false);\n'
    )
    process = subprocess.Popen(
        [binary, "--headless", "--marionette", "--no-remote", "-profile", str(profile)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = Marionette(host="127.0.0.1", port=port)
    try:
        client.start_session(timeout=120)
        client.set_window_rect(width=1280, height=800)
        yield client
    finally:
        try:
            client.delete_session()
        except Exception:  # noqa: BLE001 - the browser may be gone already; stop it below
            pass
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(profile, ignore_errors=True)


def js(client, script: str, *args):
    """Run ``script`` in the page's own scope (Marionette's default sandbox sees the DOM
    through Xray wrappers, without the page's globals such as ``window.__annotator``)."""
    return client.execute_script(script, script_args=args, sandbox=None)


def wait_for(client, script: str, *, timeout: float = 30.0):
    """Poll a JavaScript expression (``return ...``) until it is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = js(client, script)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for: {script}")
        time.sleep(0.1)
