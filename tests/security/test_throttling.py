"""Throttling: failed logins on every login path lock out (user, address) pairs; invalid
tokens are limited per address; a normal client is never slowed."""

from __future__ import annotations

import time

import pytest
from django.test import Client, override_settings
from rest_framework.test import APIClient

from annotation.services.tokens import token_create
from tests.api.uploads import url
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN_PATHS = ["/accounts/login/", "/admin/login/", "/api/auth/login/"]
LIMIT = 5
#: Short enough to wait out in a test, long enough for 8 password checks on a busy machine.
WINDOW_S = 15


def _login(client: Client, path: str, username: str, password: str):
    return client.post(path, {"username": username, "password": password})


@override_settings(CELLCURATE_LOGIN_FAILURE_LIMIT=LIMIT, CELLCURATE_LOGIN_LOCKOUT_S=WINDOW_S)
@pytest.mark.parametrize("path", LOGIN_PATHS)
def test_failed_logins_lock_out_the_pair_until_the_window_ends(world, path):
    user = world.users["manager"]
    if path.startswith("/admin/"):
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    client = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(LIMIT):
        response = _login(client, path, "manager", "wrong-password")
        assert response.status_code == 200  # the form again, with its error
    locked = _login(client, path, "manager", "wrong-password")
    locked_at = time.monotonic()
    assert locked.status_code == 429
    wait = int(locked["Retry-After"])
    assert 1 <= wait <= WINDOW_S + 1
    # Locked means locked: the right password is not even checked during the window.
    assert _login(client, path, "manager", PASSWORD).status_code == 429
    # Same user from another address, and another user from this one, are not locked.
    other_address = Client(REMOTE_ADDR="198.51.100.9")
    assert _login(other_address, path, "manager", "wrong-password").status_code == 200
    assert _login(client, path, "qa_lead", "wrong-password").status_code == 200

    time.sleep(max(0.0, locked_at + wait + 0.2 - time.monotonic()))
    response = _login(client, path, "manager", PASSWORD)
    assert response.status_code == 302
    assert client.session.get("_auth_user_id") == str(user.pk)
    # A success clears the count: the next failure is the first one again.
    assert _login(Client(REMOTE_ADDR="203.0.113.7"), path, "manager", "x").status_code == 200


@override_settings(CELLCURATE_LOGIN_FAILURE_LIMIT=LIMIT)
def test_lockout_is_case_insensitive_and_json_for_api_clients(world):
    client = Client(REMOTE_ADDR="203.0.113.8")
    for name in ("Manager", "MANAGER", "manager", " manager", "manageR"):
        assert _login(client, "/api/auth/login/", name, "nope").status_code == 200
    response = client.post(
        "/api/auth/login/", {"username": "manager", "password": PASSWORD},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert int(response["Retry-After"]) > 800


@override_settings(CELLCURATE_BAD_TOKEN_LIMIT=20)
def test_invalid_tokens_past_the_limit_answer_429_but_a_valid_token_passes(world):
    good = token_create(user=world.users["qa_lead"], name="ok").key
    guesser = APIClient(REMOTE_ADDR="203.0.113.20")
    codes = []
    for i in range(21):
        guesser.credentials(HTTP_AUTHORIZATION=f"Token cc_deadbeef_guess{i}")
        codes.append(guesser.get(url("world")).status_code)
    assert codes == [401] * 20 + [429]
    guesser.credentials(HTTP_AUTHORIZATION="Token cc_deadbeef_guess-more")
    response = guesser.get(url("world"))
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    # A valid token from the same address still works; another address is not limited.
    colleague = APIClient(REMOTE_ADDR="203.0.113.20")
    colleague.credentials(HTTP_AUTHORIZATION=f"Token {good}")
    assert colleague.get(url("world")).status_code == 200
    elsewhere = APIClient(REMOTE_ADDR="198.51.100.20")
    elsewhere.credentials(HTTP_AUTHORIZATION="Token cc_deadbeef_guess")
    assert elsewhere.get(url("world")).status_code == 401


def test_a_burst_of_requests_from_a_normal_client_is_not_slowed(world):
    """Two seconds' worth of a 20 requests/s burst, sent back to back, all answer 200:
    the user rate is per minute, so however fast they arrive none is throttled."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=world.users['annotator'], name='s').key}")
    responses = [client.get(url("world", "assignments")) for _ in range(40)]
    assert [r.status_code for r in responses] == [200] * 40
    assert not any(r.has_header("Retry-After") for r in responses)


def test_throttle_classes_are_enabled():
    from rest_framework.settings import api_settings
    from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

    assert api_settings.DEFAULT_THROTTLE_CLASSES == [AnonRateThrottle, UserRateThrottle]
    assert set(api_settings.DEFAULT_THROTTLE_RATES) == {"anon", "user"}


def test_counters_live_in_the_cache_of_the_mode(tmp_path):
    """Embedded: local memory. With a redis:// broker (CI's second run): Redis, so a failure
    counted by one web process is seen by every other."""
    import os
    import subprocess
    import sys

    from django.conf import settings

    from annotation.throttling import failure_count, failure_record
    from tests.conftest import REPO_ROOT, broker_configured

    scope = ("login", "shared-counter", "192.0.2.1")
    assert failure_record(scope, 60) == 1
    assert failure_count(scope) == 1
    backend = settings.CACHES["default"]["BACKEND"]
    if not broker_configured():
        assert backend.endswith("LocMemCache")
        return
    assert backend.endswith("RedisCache")
    code = (
        "import django; django.setup(); from annotation.throttling import failure_record; "
        f"print(failure_record({scope!r}, 60))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings",
           "CELLCURATE_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "2"
    assert failure_count(scope) == 2
