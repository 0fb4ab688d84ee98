"""Production settings refuse a missing or weak secret key at start-up, naming what to set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PROBE = "import django; django.setup(); from django.conf import settings; print(len(settings.SECRET_KEY))"
POSTGRES = "postgres://u:p@db.internal:5432/cellcurate"
STRONG = "k7Qp-2vXz_9RmT4wLc8Yh1NbGf6Jd3Se5Ua0Ko-Zi_tWqEr7Ty2Ui"


def start(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_", "CELLCURATE_", "MEDIA_"))}
    clean.update(DJANGO_SETTINGS_MODULE="config.settings", CELLCURATE_DATA_DIR=str(tmp_path))
    clean.update(env)
    return subprocess.run([sys.executable, "-c", PROBE], cwd=REPO_ROOT, env=clean,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_URL": POSTGRES}, "DJANGO_SECRET_KEY must be set in production"),
        ({"DATABASE_URL": POSTGRES, "DJANGO_SECRET_KEY": "changeme"}, "is a placeholder"),
        ({"DATABASE_URL": POSTGRES, "DJANGO_SECRET_KEY": "django-insecure-" + STRONG},
         "is a placeholder"),
        ({"DATABASE_URL": POSTGRES, "DJANGO_SECRET_KEY": "s3cr3t-k3y"},
         "has 10 characters (at least 50 are needed)"),
        ({"DATABASE_URL": POSTGRES, "DJANGO_SECRET_KEY": "ab" * 40},
         "uses only 2 distinct characters"),
        ({"CELLCURATE_HTTPS": "1"}, "DJANGO_SECRET_KEY must be set in production"),
    ],
)
def test_production_without_a_strong_key_refuses_to_start(tmp_path, env, message):
    result = start(tmp_path, **env)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured" in last and message in last, last
    assert "secrets.token_urlsafe" in last  # says how to make one
    assert not (tmp_path / "secret_key").exists()  # no per-machine key was generated


def test_production_with_a_strong_key_starts(tmp_path):
    result = start(tmp_path, DATABASE_URL=POSTGRES, DJANGO_SECRET_KEY=STRONG)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == str(len(STRONG))


def test_embedded_and_debug_keep_the_generated_key(tmp_path):
    embedded = start(tmp_path)
    assert embedded.returncode == 0, embedded.stderr[-2000:]
    key = (tmp_path / "secret_key").read_text()
    assert len(key) >= 80 and embedded.stdout.strip() == str(len(key))
    # A developer running DEBUG against PostgreSQL is not production.
    debug = start(tmp_path, DATABASE_URL=POSTGRES, DJANGO_DEBUG="1")
    assert debug.returncode == 0, debug.stderr[-2000:]
