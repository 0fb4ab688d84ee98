"""Settings are driven by the environment; the defaults are the embedded mode."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

PROBE = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps({'engine': settings.DATABASES['default']['ENGINE'], "
    "'name': str(settings.DATABASES['default']['NAME']), "
    "'eager': settings.CELERY_TASK_ALWAYS_EAGER, 'broker': settings.CELERY_BROKER_URL, "
    "'debug': settings.DEBUG, 'media': str(settings.MEDIA_ROOT), "
    "'serializer': settings.CELERY_TASK_SERIALIZER, 'accept': settings.CELERY_ACCEPT_CONTENT, "
    "'acks_late': settings.CELERY_TASK_ACKS_LATE, "
    "'reject_lost': settings.CELERY_TASK_REJECT_ON_WORKER_LOST, "
    "'time_limit': settings.CELERY_TASK_TIME_LIMIT, 'ssl': settings.SECURE_SSL_REDIRECT}))"
)


def _settings_with(tmp_path, **env) -> dict:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_", "CELLCURATE_", "MEDIA_"))}
    clean.update(DJANGO_SETTINGS_MODULE="config.settings", CELLCURATE_DATA_DIR=str(tmp_path))
    clean.update(env)
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO_ROOT, env=clean,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip().splitlines()[-1])
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_embedded_defaults_are_sqlite_eager_local_media_and_no_debug(tmp_path):
    s = _settings_with(tmp_path)
    assert s["engine"] == "django.db.backends.sqlite3"
    assert s["name"] == str(tmp_path / "db.sqlite3")
    assert s["eager"] is True and s["broker"] == ""
    assert s["media"] == str(tmp_path / "media")
    assert s["debug"] is False
    assert s["ssl"] is False


def test_production_environment_selects_postgres_and_real_workers(tmp_path):
    s = _settings_with(
        tmp_path,
        DATABASE_URL="postgres://u:p@db.internal:5432/cellcurate",
        CELERY_BROKER_URL="redis://redis.internal:6379/0",
        DJANGO_SECRET_KEY="k7Qp-2vXz_9RmT4wLc8Yh1NbGf6Jd3Se5Ua0Ko-Zi_tWqEr7Ty2Ui",
        CELLCURATE_HTTPS="1",
    )
    assert s["engine"] == "django.db.backends.postgresql"
    assert s["name"] == "cellcurate"
    assert s["eager"] is False and s["broker"] == "redis://redis.internal:6379/0"
    assert s["ssl"] is True


def test_celery_is_json_only_late_ack_with_time_limits(tmp_path):
    s = _settings_with(tmp_path)
    assert s["serializer"] == "json" and s["accept"] == ["json"]
    assert s["acks_late"] is True and s["reject_lost"] is True
    assert s["time_limit"] == 1800


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    with pytest.raises(RuntimeError, match="DJANGO_SECRET_KEY must be set"):
        _settings_with(tmp_path, CELLCURATE_HTTPS="1")


def test_a_malformed_boolean_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="DJANGO_DEBUG='maybe' is not a boolean"):
        _settings_with(tmp_path, DJANGO_DEBUG="maybe")


def test_embedded_secret_key_is_generated_once_and_kept(tmp_path):
    _settings_with(tmp_path)
    key = (tmp_path / "secret_key").read_text()
    _settings_with(tmp_path)
    assert (tmp_path / "secret_key").read_text() == key
    assert len(key) >= 50
