"""Fixtures shared by the whole suite.

Engineers' fixtures go above the marker; the session-wide plumbing (media folder, the real
Celery worker) lives below it.
"""

# --- lead fixtures ---
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.test.utils import override_settings

from tests.browser import browser, page, screenshot_dir  # noqa: F401  (one Playwright session)


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    """Throttle and lockout counters live in the cache; each test starts with none.

    With Redis (a broker configured) only our own prefixed keys go: the same database may
    hold the Celery broker's queues and bindings.
    """
    from django.core.cache import cache

    if "Redis" not in settings.CACHES["default"]["BACKEND"]:
        cache.clear()
        return
    client = cache._cache.get_client(write=True)
    keys = list(client.scan_iter(f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:*"))
    if keys:
        client.delete(*keys)


REPO_ROOT = Path(__file__).resolve().parent.parent
#: Real files written by other tools, with their origin and licence in ``tests/data/SOURCES.md``.
TEST_DATA = REPO_ROOT / "tests" / "data"


def broker_configured() -> bool:
    return bool(settings.CELERY_BROKER_URL)


@pytest.fixture(scope="session", autouse=True)
def _session_media_root():
    """Every test writes media under one throw-away folder that a worker process can see too."""
    root = Path(tempfile.mkdtemp(prefix="cellcurate-test-media-"))
    with override_settings(MEDIA_ROOT=root):
        yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def media_root(_session_media_root, tmp_path):
    """A fresh, empty media folder for one test (files left behind can be counted)."""
    with override_settings(MEDIA_ROOT=tmp_path / "media"):
        (tmp_path / "media").mkdir()
        yield tmp_path / "media"


def _database_url_for(settings_dict: dict) -> str:
    if settings_dict["ENGINE"] != "django.db.backends.postgresql":
        raise RuntimeError(
            "A real Celery worker needs a database it can share with the tests: run with "
            "DATABASE_URL=postgres://... (the SQLite test database lives in memory)."
        )
    user = settings_dict.get("USER") or "postgres"
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else f"{user}@"
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, _session_media_root):
    """Start a real ``celery worker`` against the test database and the configured broker.

    Tests that use it must use ``@pytest.mark.django_db(transaction=True)`` so that what
    they write is committed and visible to the worker.
    """
    if not broker_configured():
        raise RuntimeError("celery_worker_process needs CELERY_BROKER_URL (a real broker)")
    from django.db import connection

    with django_db_blocker.unblock():
        db_url = _database_url_for(connection.settings_dict)
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_url,
        MEDIA_ROOT=str(_session_media_root),
        DJANGO_SETTINGS_MODULE="config.settings",
        PYTHONUNBUFFERED="1",
    )
    log_path = Path(tempfile.mkdtemp(prefix="cellcurate-worker-")) / "worker.log"
    hostname = f"test-worker-{os.getpid()}@%h"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
             "-Q", "default,training", "-n", hostname, "--loglevel=INFO", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{log_path.read_text()}")
            if " ready." in log_path.read_text():
                break
            time.sleep(0.3)
        else:
            raise RuntimeError(f"celery worker did not start in 60 s:\n{log_path.read_text()}")
        yield {"process": proc, "log": log_path, "hostname_prefix": f"test-worker-{os.getpid()}@"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def eager_tasks():
    """Run tasks in-process even when a broker is configured.

    For tests of what a task does; whether tasks reach a real worker is tested on its own
    (tests/test_worker.py).
    """
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _tasks_in_process_unless_worker_test(request):
    """Every test but the real-worker ones (marked ``worker``) runs its tasks in-process,
    also when a broker is configured (CI's second run): those tests check what a task does
    (a QA run after the k-th submission, an export, a re-check) and read its rows at once.
    Whether tasks reach real workers is what the ``worker`` tests check."""
    if request.node.get_closest_marker("worker") is None:
        request.getfixturevalue("eager_tasks")
    yield


def _drop_broker_connections(app) -> None:
    """Forget the app's cached broker connections and producers, so the next send opens
    one to the broker now configured (earlier tests in the session may have opened one)."""
    from kombu import pools

    # kombu keeps one pool per connection in process-wide groups: closing a pool without
    # clearing its group would hand the closed pool to the next sender of the same URL.
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def filesystem_broker(tmp_path, monkeypatch):
    """Embedded-worker mode for one test: tasks go as message files into the yielded
    folder (kombu's filesystem transport), as with ``CELLCURATE_EMBEDDED_WORKER=1``."""
    from config.celery import app

    # Celery reads CELERY_BROKER_URL from the environment before its configuration: with a
    # broker configured (CI's second run) the message would go there instead.
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.delenv("CELERY_BROKER_WRITE_URL", raising=False)
    folder = tmp_path / "queue"
    folder.mkdir()
    saved = {k: app.conf[k] for k in ("broker_url", "broker_transport_options", "task_always_eager")}
    app.conf.update(broker_url="filesystem://", task_always_eager=False,
                    broker_transport_options={"data_folder_in": str(folder), "data_folder_out": str(folder),
                                              "control_folder": str(tmp_path / "control")})
    _drop_broker_connections(app)
    try:
        with override_settings(CELERY_TASK_ALWAYS_EAGER=False):
            yield folder
    finally:
        app.conf.update(saved)
        _drop_broker_connections(app)

