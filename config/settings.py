"""CellCurate settings, driven by environment variables.

The defaults are the *embedded* mode: a SQLite file, Celery tasks run eagerly in-process,
media in a local folder, all under ``CELLCURATE_DATA_DIR`` (default ``./var``). Production
sets ``DATABASE_URL=postgres://...``, ``CELERY_BROKER_URL=redis://...``,
``DJANGO_SECRET_KEY``, ``DJANGO_ALLOWED_HOSTS`` and ``CELLCURATE_HTTPS=1``.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false)")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from exc


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DATA_DIR = Path(os.environ.get("CELLCURATE_DATA_DIR", BASE_DIR / "var"))
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", False)


#: Placeholders seen in example configurations; never a production key.
_PLACEHOLDER_KEYS = {"changeme", "change-me", "change_me", "secret", "secret-key", "dev", "test"}


def _production() -> bool:
    """Production: DEBUG off and a shared database (not SQLite), or HTTPS on."""
    url = os.environ.get("DATABASE_URL", "")
    shared_db = bool(url) and not url.startswith("sqlite")
    return (shared_db and not DEBUG) or env_bool("CELLCURATE_HTTPS", False)


def _weak_key_reason(key: str) -> str | None:
    if key.strip().lower() in _PLACEHOLDER_KEYS or key.startswith("django-insecure-"):
        return "is a placeholder"
    if len(key) < 50:
        return f"has {len(key)} characters (at least 50 are needed)"
    if len(set(key)) < 5:
        return f"uses only {len(set(key))} distinct characters"
    return None


def _secret_key() -> str:
    """The secret key comes from the environment; embedded mode keeps a random one on disk.

    There is deliberately no hard-coded fallback. In production (see :func:`_production`)
    a missing or weak ``DJANGO_SECRET_KEY`` refuses start-up: a key generated per machine
    would differ between web machines (sessions, signed links and password-reset tokens
    of one would fail on another). The key generated once per data folder is for the
    embedded default only.
    """
    key = os.environ.get("DJANGO_SECRET_KEY", "")
    make = 'python -c "import secrets; print(secrets.token_urlsafe(64))"'
    if _production():
        if not key:
            raise ImproperlyConfigured(
                "DJANGO_SECRET_KEY must be set in production (DEBUG off with a shared "
                "DATABASE_URL, or CELLCURATE_HTTPS=1), to the same random value on every "
                f"web and worker machine; make one with {make}"
            )
        reason = _weak_key_reason(key)
        if reason:
            raise ImproperlyConfigured(
                f"DJANGO_SECRET_KEY {reason}; set it to a long random value, e.g. from {make}"
            )
        return key
    if key:
        return key
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "annotation",
    "guidelines",
    "qa",
    "datasets",
    "training",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.headers.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "annotation.throttling.LoginThrottleMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite serialises writers. Write transactions take the write lock when they begin
    # (IMMEDIATE), so concurrent edits queue for it (busy timeout) instead of failing with
    # "database is locked" when a read lock cannot be upgraded; WAL lets reads go on
    # meanwhile. A lock still held past the timeout is a JSON 503 (config/api.py).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=env_int("CELLCURATE_SQLITE_BUSY_TIMEOUT_S", 20),
        transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    )
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", DATA_DIR / "static"))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", DATA_DIR / "media"))

# Object storage (S3-compatible: AWS, MinIO, Ceph...) when a bucket is configured;
# otherwise the local folder. Credentials come from the environment only (or the
# instance role when unset). Exports get their own alias: on a local disk its writes are
# atomic (temp file, fsync, rename) and overwrite, on S3 every PUT is atomic already.
if os.environ.get("AWS_STORAGE_BUCKET_NAME"):
    _s3_options = {
        "bucket_name": os.environ["AWS_STORAGE_BUCKET_NAME"],
        "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,
        "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
        "access_key": os.environ.get("AWS_ACCESS_KEY_ID") or None,
        "secret_key": os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
        "addressing_style": os.environ.get("AWS_S3_ADDRESSING_STYLE") or None,
        "signature_version": "s3v4",
        "default_acl": None,
        "querystring_auth": True,
        "querystring_expire": env_int("AWS_QUERYSTRING_EXPIRE", 3600),
    }
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        # Uploads never overwrite each other (same behaviour as the local folder).
        "OPTIONS": {**_s3_options, "file_overwrite": False},
    }
    _exports_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {**_s3_options, "file_overwrite": True,
                    "location": os.environ.get("CELLCURATE_EXPORTS_PREFIX", "")},
    }
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    _exports_storage = {"BACKEND": "datasets.storage.AtomicFileSystemStorage"}
STORAGES = {
    "default": _default_storage,
    "exports": _exports_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Uploads: large microscopy files stream to disk rather than memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("CELLCURATE_MAX_UPLOAD_BYTES", 512 * 1024 * 1024)
FILE_UPLOAD_PERMISSIONS = 0o640

# Limits on what an uploaded image or mask may decode to (checked before decoding).
CELLCURATE_MAX_IMAGE_PIXELS = env_int("CELLCURATE_MAX_IMAGE_PIXELS", 16384 * 16384)
CELLCURATE_MAX_IMAGE_BYTES = env_int("CELLCURATE_MAX_IMAGE_BYTES", 2 * 1024**3)
# How many files the manager page uploads at once.
CELLCURATE_UPLOAD_PARALLEL = max(1, env_int("CELLCURATE_UPLOAD_PARALLEL", 2))
# Memory budgets of the parsers of untrusted files (annotation/masks/safety.py Limits):
# what an image or mask may decode to (all axes x bytes per sample, checked from the
# header), what a _seg.npy pickle may allocate, and how much JSON is parsed at all.
CELLCURATE_MAX_DECODED_BYTES = env_int("CELLCURATE_MAX_DECODED_BYTES", 256 * 1024**2)
CELLCURATE_MAX_JSON_BYTES = env_int("CELLCURATE_MAX_JSON_BYTES", 48 * 1024**2)
CELLCURATE_MAX_ZIP_BYTES = env_int("CELLCURATE_MAX_ZIP_BYTES", 512 * 1024**2)
CELLCURATE_ASSIGNMENT_LEASE_MINUTES = env_int("CELLCURATE_ASSIGNMENT_LEASE_MINUTES", 60)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotation.api.token_auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # The browsable API with our filter serializers as its filter form (config/renderers.py).
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "config.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    # Far above a page or a script uploading a folder (bursts of 20 requests a second per
    # user pass); failed logins and bad tokens have their own lockouts (below).
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("CELLCURATE_THROTTLE_ANON", "120/min"),
        "user": os.environ.get("CELLCURATE_THROTTLE_USER", "6000/min"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CellCurate API",
    "DESCRIPTION": "Annotation QA and training data for microscopy cell segmentation.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Served from our own static files: the docs page works without internet access.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Group operations by resource (images, assignments, ...) rather than all under "v1".
    # Jobs and dataset exports share one status vocabulary, training names dataset splits:
    # one schema name each.
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "datasets.enums.STATUS_CHOICES",
        "SplitEnum": "datasets.enums.SPLIT_CHOICES",
    },
    "SCHEMA_PATH_PREFIX": r"/api/v1/(projects/\{slug\}/(?=.))?",
}

# Celery. No broker configured -> eager, in-process (embedded default).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
# Embedded worker (`make demo`): no broker service, yet long tasks leave the web request.
# Messages go through kombu's filesystem transport in a local folder, and a
# `celery worker` process started beside the web server runs them.
CELLCURATE_EMBEDDED_WORKER = env_bool("CELLCURATE_EMBEDDED_WORKER") and not CELERY_BROKER_URL
if CELLCURATE_EMBEDDED_WORKER:
    CELERY_BROKER_URL = "filesystem://"
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL or None)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A message whose worker died (acks_late) goes back to the queue after this many seconds;
# keep it above the longest task's run time, or a still-running task gets a second copy.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
    "unacked_restore_interval": min(10, env_int("CELERY_VISIBILITY_TIMEOUT", 3600)),
}
if CELLCURATE_EMBEDDED_WORKER:
    _queue_dir = DATA_DIR / "queue"
    for _sub in ("messages", "processed", "control"):
        (_queue_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "messages"), "data_folder_out": str(_queue_dir / "messages"),
        "processed_folder": str(_queue_dir / "processed"), "store_processed": False,
        # kombu's default is "control" in the working directory: keep it under the data folder.
        "control_folder": str(_queue_dir / "control"),
    }
    CELERY_RESULT_BACKEND = None
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 30 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 25 * 60)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"training.*": {"queue": "training"}}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_EXPIRES = 7 * 24 * 3600
CELERY_TIMEZONE = TIME_ZONE
# `celery -A config beat` re-opens assignments whose lease ran out.
CELERY_BEAT_SCHEDULE = {
    "expire-assignment-leases": {"task": "annotation.leases_expire", "schedule": 300.0},
    # Training runs whose worker stopped beating are requeued (they resume from a checkpoint).
    "reap-stale-training-runs": {"task": "training.runs_reap", "schedule": 60.0,
                                 "options": {"queue": "training"}},
}

# Training (training app): device of the workers ("auto" uses CUDA when present), the
# heartbeat of a running run, after how long without one it counts as dead, how often a
# run is retried, and the time limit of one attempt.
TRAINING_DEVICE = os.environ.get("TRAINING_DEVICE", "auto")
TRAINING_HEARTBEAT_S = env_int("TRAINING_HEARTBEAT_S", 15)
TRAINING_HEARTBEAT_STALE_S = env_int("TRAINING_HEARTBEAT_STALE_S", 180)
TRAINING_MAX_ATTEMPTS = env_int("TRAINING_MAX_ATTEMPTS", 5)
TRAINING_TASK_TIME_LIMIT_S = env_int("TRAINING_TASK_TIME_LIMIT_S", 12 * 3600)
# SAM weights file for the editor's assist (none: the classical fallback answers).
ASSIST_SAM_WEIGHTS = os.environ.get("ASSIST_SAM_WEIGHTS", "")

# Security. Production sets CELLCURATE_HTTPS=1 behind a TLS-terminating proxy.
# Cache: throttle and lockout counters. Redis when CACHE_URL (or a redis:// broker) is
# set, so every web process shares them; the embedded default keeps them in memory.
_cache_url = os.environ.get("CACHE_URL") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else ""
)
if _cache_url:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": _cache_url, "KEY_PREFIX": "cellcurate"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                          "LOCATION": "cellcurate"}}

# Failed logins (site, admin, browsable API): per user name and client address.
CELLCURATE_LOGIN_FAILURE_LIMIT = env_int("CELLCURATE_LOGIN_FAILURE_LIMIT", 5)
CELLCURATE_LOGIN_LOCKOUT_S = env_int("CELLCURATE_LOGIN_LOCKOUT_S", 15 * 60)
# Requests with an invalid API token, per client address.
CELLCURATE_BAD_TOKEN_LIMIT = env_int("CELLCURATE_BAD_TOKEN_LIMIT", 20)
CELLCURATE_BAD_TOKEN_WINDOW_S = env_int("CELLCURATE_BAD_TOKEN_WINDOW_S", 10 * 60)
# Proxies in front of the app whose X-Forwarded-For is trusted (0: use REMOTE_ADDR).
CELLCURATE_TRUSTED_PROXIES = env_int("CELLCURATE_TRUSTED_PROXIES", 0)
# API tokens: hashed, named, expiring (annotation/services/tokens.py).
CELLCURATE_TOKEN_TTL_DAYS = env_int("CELLCURATE_TOKEN_TTL_DAYS", 90)
CELLCURATE_TOKEN_MAX_TTL_DAYS = env_int("CELLCURATE_TOKEN_MAX_TTL_DAYS", 365)

HTTPS = env_bool("CELLCURATE_HTTPS", False)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# No inline script anywhere (pages load ES modules from static/ and read json_script data).
# Styles: files from our origin, plus inline style *attributes* and elements, which the
# Django admin, the DRF browsable API and Swagger UI use; CSS cannot run code, and
# connect-src/img-src 'self' keep CSS from sending data elsewhere.
CELLCURATE_CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:", "blob:"],
    "font-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "worker-src": ["'self'", "blob:"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
