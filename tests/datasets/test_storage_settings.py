"""Storage settings: local folder by default, S3 (complete, from the environment) with a bucket."""

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT

_PRINT = (
    "import json, os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings'; import django; "
    "django.setup(); from django.conf import settings; from django.core.files.storage import storages; "
    "print(json.dumps({'storages': settings.STORAGES, 'exports': type(storages['exports']).__name__, "
    "'default': type(storages['default']).__name__}, default=str))"
)


def _settings(tmp_path, **env) -> dict:
    base = {"PATH": "/usr/bin:/bin", "CELLCURATE_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", _PRINT], cwd=REPO_ROOT, capture_output=True, text=True,
                         check=True, env={**base, **env})
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_local_default_has_atomic_exports(tmp_path):
    s = _settings(tmp_path)
    assert s["default"] == "FileSystemStorage"
    assert s["exports"] == "AtomicFileSystemStorage"


def test_bucket_switches_everything_to_s3_with_endpoint_region_and_credentials(tmp_path):
    s = _settings(tmp_path, AWS_STORAGE_BUCKET_NAME="lab-data", AWS_S3_ENDPOINT_URL="http://minio:9000",
                  AWS_S3_REGION_NAME="eu-central-1", AWS_ACCESS_KEY_ID="AKIA1", AWS_SECRET_ACCESS_KEY="s3cr3t",
                  AWS_S3_ADDRESSING_STYLE="path", CELLCURATE_EXPORTS_PREFIX="exports-prod")
    assert s["default"] == s["exports"] == "S3Storage"
    default = s["storages"]["default"]["OPTIONS"]
    exports = s["storages"]["exports"]["OPTIONS"]
    assert default["bucket_name"] == exports["bucket_name"] == "lab-data"
    assert default["endpoint_url"] == "http://minio:9000" and default["region_name"] == "eu-central-1"
    assert default["access_key"] == "AKIA1" and default["secret_key"] == "s3cr3t"
    assert default["addressing_style"] == "path"
    assert default["file_overwrite"] is False and exports["file_overwrite"] is True
    assert exports["location"] == "exports-prod"
